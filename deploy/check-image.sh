#!/usr/bin/env bash
# Build the image here and check it (issue 35): bash deploy/check-image.sh
# Needs root, buildah and debootstrap (../shared/tools/make-base-image.sh builds the base image
# from Debian's archive; container registries are not reachable from these machines). Inside the
# image it starts the gateway as its non-root user on a mounted /config and the /data volume, in
# front of a mock upstream on the host's loopback, checks /health and a real request, that the
# record lands under /data, and that SIGTERM stops it cleanly (exit 0) within the drain time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d /tmp/ccgate-image.XXXXXX)"
chmod 755 "$WORK"  # the container user reaches its mounts through it
PORT=38180 MOCK=38181
bash "$ROOT/../shared/tools/make-base-image.sh" > /dev/null
buildah bud --isolation=chroot --pull=never --format docker -q -t ccgate:check \
  -v /etc/ssl/certs/ca-certificates.crt:/usr/local/share/host-build-ca.crt:ro \
  -v /var/tmp/ccgate-build/pip.conf:/etc/pip.conf:ro "$ROOT" > /dev/null
(cd "$ROOT" && python3 - "$WORK" "$PORT" "$MOCK" <<'PY'
import sys
from pathlib import Path
from tests.helpers import write_config
work, port, mock = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
write_config(work / "config", [{"id": "m", "url": f"http://127.0.0.1:{mock}",
                                "key": "sk-upstream-check-key-123"}],
             server={"server": {"port": port, "shutdownGrace": 5}})
PY
)
chown -R 10001:10001 "$WORK/config"
(cd "$ROOT" && exec python3 -m tests.mock_upstream image-check "$MOCK") &
MOCK_PID=$!
trap 'kill $MOCK_PID 2>/dev/null || true; rm -rf "$WORK"; buildah rm ccgate-check >/dev/null 2>&1 || true' EXIT
buildah rm ccgate-check > /dev/null 2>&1 || true
buildah from --name ccgate-check ccgate:check > /dev/null
# One foreground run: the gateway in the background inside, the checks, then SIGTERM.
# /config is the host directory (one --mount; -v does not replace the image's VOLUME under
# buildah 1.28, and with two --mount flags neither took: seen here). /data is the anonymous volume
# buildah makes for the image's VOLUME, as `docker run` without -v does; the records are checked
# there from inside.
buildah run --isolation=chroot --mount "type=bind,src=$WORK/config,dst=/config,rw" ccgate-check -- \
  sh -c "python3 app.py --host 127.0.0.1 --port $PORT & pid=\$!; python3 - \$pid <<'PY'
import json, os, signal, sys, time, urllib.request
pid, base = int(sys.argv[1]), 'http://127.0.0.1:$PORT'
for _ in range(100):
    try:
        health = json.load(urllib.request.urlopen(base + '/health', timeout=2)); break
    except OSError:
        time.sleep(0.2)
assert health['status'] in ('ok', 'degraded'), health
req = urllib.request.Request(base + '/anthropic/v1/messages', method='POST', data=json.dumps(
    {'model': 'claude-sonnet-4-5', 'max_tokens': 5, 'messages': [{'role': 'user', 'content': 'hi'}]}
).encode(), headers={'x-api-key': 'sk-ccg-test-tenant-key-0123456789'})
answer = json.load(urllib.request.urlopen(req, timeout=10))
assert 'image-check' in answer['content'][0]['text'], answer
uid = [l.split()[1] for l in open(f'/proc/{pid}/status') if l.startswith('Uid:')][0]
assert uid != '0', 'the gateway runs as root'
time.sleep(0.5)
records = [p for p in __import__('pathlib').Path('/data/usage').rglob('*.json')]
assert records, 'no usage record under /data'
started = time.monotonic()
os.kill(pid, signal.SIGTERM)
while os.path.exists(f'/proc/{pid}') and open(f'/proc/{pid}/stat').read().split()[2] != 'Z':
    time.sleep(0.05)
    assert time.monotonic() - started < 6, 'did not stop within the drain time'
print(f'image check: non-root uid {uid}, /health ok, a request served and recorded under /data, '
      f'stopped {time.monotonic() - started:.1f} s after SIGTERM')
PY
status=\$?; [ \$status = 0 ] || kill \$pid; wait \$pid; exit \$status"
