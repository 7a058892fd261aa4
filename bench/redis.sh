#!/usr/bin/env bash
# The Redis store against the file store, alternating rounds in one run, with the shared
# harness's non-streaming and streaming phases:  bash bench/redis.sh [--rounds 2] [--rev REV]
# A private redis-server on 127.0.0.1:16379 (its own CPU is not counted: the harness counts the
# gateway's process tree). Prints the medians of same-round ratios (redis / file).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${CCGATE_BENCH_HARNESS:-$ROOT/../shared/bench}"
ROUNDS=2 DURATION=10
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
source "$ROOT/bench/workdir.sh"
redis-server --port 16379 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --pidfile "$WORK/redis.pid" --dir "$WORK" > /dev/null
trap 'kill "$(cat "$WORK/redis.pid")" 2>/dev/null || true' EXIT
cp -r "$WORK/config" "$WORK/config-redis"
python3 - "$WORK/config-redis/server.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["storage"] = {"type": "redis", "url": "redis://127.0.0.1:16379/0"}
json.dump(doc, open(sys.argv[1], "w"))
PY
for r in $(seq 1 "$ROUNDS"); do
  for store in file redis; do
    config="$WORK/config"; [ "$store" = redis ] && config="$WORK/config-redis"
    "$HARNESS/run.sh" --name "$store" --only nonstream,stream --duration "$DURATION" \
      --start "cd $ROOT && exec python3 app.py --config-dir $config --data-dir $WORK/data-r$r-$store" \
      --base http://127.0.0.1:13000/anthropic --key "$KEY" --out "$OUT/r$r-$store" > /dev/null
  done
done
python3 "$ROOT/bench/ratios.py" "$OUT" file redis
