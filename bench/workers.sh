#!/usr/bin/env bash
# One worker against two (python app.py --workers 2), alternating rounds in one run, with the
# shared harness's non-streaming and streaming phases:  bash bench/workers.sh [--rounds 2]
# Prints the medians of same-round ratios (two workers / one); the harness counts the CPU of
# the whole process tree (supervisor and workers). The mock upstream and wrk share the machine's
# cores with the gateway, so on 2 cores two workers cannot double the throughput.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/pair.sh" "$@"
for r in $(seq 1 "$ROUNDS"); do
  for w in 1 2; do
    measure "w$w" "$r" --workers "$w" --config-dir "$WORK/config"
  done
done
python3 "$ROOT/bench/ratios.py" "$OUT" w1 w2
