# Sourced by the bench scripts that measure the Redis store (run.sh, redis.sh). Needs $WORK.
# Starts a private redis-server on 127.0.0.1:16379 (stopped at exit; its own CPU is not counted:
# the harness counts the gateway's process tree) and writes $WORK/config-redis, the bench config
# with storage.type "redis".
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
