# Sourced by the scripts that compare two ways of running the gateway in one run
# (workers.sh, redis.sh):  source bench/pair.sh "$@"
# Reads --rounds (default 2) and --duration (default 10), sets up $WORK (bench/workdir.sh), and
# defines  measure NAME ROUND APP_ARGS...  : the harness's non-streaming and streaming phases
# against python app.py APP_ARGS, into $OUT/r<ROUND>-NAME (bench/ratios.py compares two names).
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
measure() {
  local name="$1" round="$2"; shift 2
  "$HARNESS/run.sh" --name "$name" --only nonstream,stream --duration "$DURATION" \
    --start "cd $ROOT && exec python3 app.py $* --data-dir $WORK/data-r$round-$name" \
    --base http://127.0.0.1:13000/anthropic --key "$KEY" --out "$OUT/r$round-$name" > /dev/null
}
