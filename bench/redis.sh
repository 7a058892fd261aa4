#!/usr/bin/env bash
# The Redis store against the file store, alternating rounds in one run, with the shared
# harness's non-streaming and streaming phases:  bash bench/redis.sh [--rounds 2]
# A private redis-server on 127.0.0.1:16379 (its own CPU is not counted: the harness counts the
# gateway's process tree). Prints the medians of same-round ratios (redis / file).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/pair.sh" "$@"
source "$ROOT/bench/redis_store.sh"
for r in $(seq 1 "$ROUNDS"); do
  measure file "$r" --config-dir "$WORK/config"
  measure redis "$r" --config-dir "$WORK/config-redis"
done
python3 "$ROOT/bench/ratios.py" "$OUT" file redis
