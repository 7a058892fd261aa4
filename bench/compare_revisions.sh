#!/usr/bin/env bash
# CPU per request of this checkout against an earlier commit, same run, alternating rounds:
#   bash bench/compare_revisions.sh BASE_REV [--head REV] [--rounds 2] [--duration 10]
# Uses the shared harness (../shared/bench or $CCGATE_BENCH_HARNESS): non-streaming and streaming
# phases for each revision in turn; prints per-round numbers and the medians' ratios (this/base).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${CCGATE_BENCH_HARNESS:-$ROOT/../shared/bench}"
BASE="${1:?usage: compare_revisions.sh BASE_REV [--rounds N] [--duration S]}"; shift
ROUNDS=2 DURATION=10 HEAD=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;; --duration) DURATION="$2"; shift 2 ;;
    --head) HEAD="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
ulimit -n 65536 2>/dev/null || true
WORK="$(mktemp -d /tmp/ccgate-compare.XXXXXX)"
git -C "$ROOT" worktree add -q --detach "$WORK/base" "$BASE"
THIS="$ROOT"  # the checkout as it is, or --head REV
if [ -n "$HEAD" ]; then
  git -C "$ROOT" worktree add -q --detach "$WORK/head" "$HEAD"
  THIS="$WORK/head"
fi
trap 'git -C "$ROOT" worktree remove --force "$WORK/base"; [ -z "$HEAD" ] || git -C "$ROOT" worktree remove --force "$WORK/head"' EXIT
KEY="sk-bench-tenant-key-0000000000"
bash "$ROOT/bench/write_config.sh" "$WORK/config" "$KEY"
for r in $(seq 1 "$ROUNDS"); do
  for rev in base this; do
    dir="$THIS"; [ "$rev" = base ] && dir="$WORK/base"
    "$HARNESS/run.sh" --name "$rev" --start "cd $dir && exec python3 app.py --config-dir $WORK/config --data-dir $WORK/data-$rev-$r" \
      --base http://127.0.0.1:13000/anthropic --key "$KEY" --duration "$DURATION" \
      --only nonstream,stream --out "$WORK/r$r-$rev" > /dev/null
  done
done
python3 "$HARNESS/summarize.py" --ref base "$WORK"/r*/metrics.jsonl
