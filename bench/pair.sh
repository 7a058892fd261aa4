# Sourced by the scripts that compare two ways of running the gateway in one run
# (workers.sh, redis.sh):  source bench/pair.sh "$@"
# Reads --rounds (default 2) and --duration (default 10), sets up $WORK (bench/workdir.sh), and
# defines measure (bench/measure.sh).
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
source "$ROOT/bench/measure.sh"
