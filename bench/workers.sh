#!/usr/bin/env bash
# One worker against two (python app.py --workers 2), alternating rounds in one run, with the
# shared harness's non-streaming and streaming phases:  bash bench/workers.sh [--rounds 2]
# Prints the medians of same-round ratios (two workers / one); the harness counts the CPU of
# the whole process tree (supervisor and workers). The mock upstream and wrk share the machine's
# cores with the gateway, so on 2 cores two workers cannot double the throughput.
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
for r in $(seq 1 "$ROUNDS"); do
  for w in 1 2; do
    "$HARNESS/run.sh" --name "w$w" --only nonstream,stream --duration "$DURATION" \
      --start "cd $ROOT && exec python3 app.py --workers $w --config-dir $WORK/config --data-dir $WORK/data-r$r-w$w" \
      --base http://127.0.0.1:13000/anthropic --key "$KEY" --out "$OUT/r$r-w$w" > /dev/null
  done
done
python3 "$ROOT/bench/ratios.py" "$OUT" w1 w2
