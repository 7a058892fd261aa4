#!/usr/bin/env bash
# Writes the benchmark's gateway config:  bench/write_config.sh DIR TENANT_KEY
# (a mock upstream on 127.0.0.1:18080, one tenant without limits, logs on, console off).
# Every benchmark connection comes from 127.0.0.1, so the per-address cap
# (server.maxConnectionsPerIP, 256 by default) is off: the slow-stream phases open 500 and 2,000.
set -euo pipefail
DIR="$1" KEY="$2"
mkdir -p "$DIR"
cat > "$DIR/server.json" <<JSON
{"server": {"host": "127.0.0.1", "port": 13000, "maxConnectionsPerIP": 0},
 "admin": {"enabled": true, "username": "admin", "password": "bench-admin-password"},
 "openai": {"models": {"gpt-4o": "claude-sonnet-4-20250514"}},
 "logging": {"level": "info", "enableConsole": false}}
JSON
cat > "$DIR/upstreams.json" <<JSON
{"upstreams": [{"id": "mock", "name": "bench mock", "url": "http://127.0.0.1:18080", "key": "sk-bench-upstream"}],
 "loadBalancer": {"strategy": "round_robin", "healthCheckEnabled": false}}
JSON
cat > "$DIR/tenants.json" <<JSON
{"tenants": [{"id": "bench", "name": "bench", "key": "$KEY", "allowedModels": ["*"]}]}
JSON
