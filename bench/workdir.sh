# Sourced by the bench scripts: a descriptor limit for thousands of streams, a work directory
# ($WORK, results in $OUT) and a gateway config for the tenant key $KEY.
[ -x "$HARNESS/run.sh" ] || { echo "no harness at $HARNESS (set CCGATE_BENCH_HARNESS)" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
WORK="$(mktemp -d /tmp/ccgate-bench.XXXXXX)"
OUT="$WORK/results"
KEY="sk-bench-tenant-key-0000000000"
mkdir -p "$OUT"
bash "$ROOT/bench/write_config.sh" "$WORK/config" "$KEY"
