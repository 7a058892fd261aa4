# Sourced by the bench scripts that compare ways of running the gateway in one run (run.sh,
# workers.sh, redis.sh). Needs $ROOT, $HARNESS, $DURATION, $WORK, $OUT and $KEY. Defines
#   measure NAME ROUND APP_ARGS...
# the harness's non-streaming and streaming phases against python app.py APP_ARGS, into
# $OUT/r<ROUND>-NAME (bench/ratios.py compares two names).
measure() {
  local name="$1" round="$2"; shift 2
  "$HARNESS/run.sh" --name "$name" --only nonstream,stream --duration "$DURATION" \
    --start "cd $ROOT && exec python3 app.py $* --data-dir $WORK/data-r$round-$name" \
    --base http://127.0.0.1:13000/anthropic --key "$KEY" --out "$OUT/r$round-$name" > /dev/null
}
