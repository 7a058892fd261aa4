#!/usr/bin/env bash
# Check deploy/install.sh and deploy/ccgate.service in a fresh Debian root (issue 35):
#   bash deploy/check-install.sh
# Needs root, buildah and debootstrap. The root is a copy of the debootstrapped bookworm that
# ../shared/tools/make-base-image.sh builds (minbase), with systemd added as on any VPS image but
# no python3 (install.sh must apt-get it). Inside it, with chroot: install.sh as an owner runs it, `systemd-analyze verify` on the
# installed unit, the gateway started as the unit starts it, /health and a real request with the
# printed tenant key to a mock upstream on the host's loopback, then install.sh again (the upgrade),
# which must keep the config and the key.
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT=38190 MOCK=38191
bash "$SRC/../shared/tools/make-base-image.sh" > /dev/null
ROOT="$(mktemp -d /var/tmp/ccgate-root.XXXXXX)"
ctr=$(buildah from docker.io/library/debian:bookworm-slim)
cp -a "$(buildah mount "$ctr")/." "$ROOT/"
buildah umount "$ctr" > /dev/null; buildah rm "$ctr" > /dev/null
MOCK_PID= GW_PID=
cleanup() {
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null || true
  [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null || true
  for m in dev/pts dev proc; do umount "$ROOT/$m" 2>/dev/null || umount -l "$ROOT/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$ROOT"  # never into the host's /dev or /proc, even if still mounted
}
trap cleanup EXIT
mount --bind /proc "$ROOT/proc"; mount --bind /dev "$ROOT/dev"; mount --bind /dev/pts "$ROOT/dev/pts"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# PyPI is reached through this machine's TLS proxy: its CA for pip only (an owner's VPS needs none).
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/root/host-ca.crt"
mkdir -p "$ROOT/root/src"
(cd "$SRC" && git ls-files -z | xargs -0 tar -cf - ) | tar -C "$ROOT/root/src" -xf -
CLEAN_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PIP_CERT=/root/host-ca.crt)
in_root() { chroot "$ROOT" "${CLEAN_ENV[@]}" "$@"; }

# A VPS image has systemd (minbase has not): systemd-analyze verify needs its units.
in_root env DEBIAN_FRONTEND=noninteractive apt-get -qq update
in_root env DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends systemd \
  > /dev/null
first="$(in_root bash /root/src/deploy/install.sh)"
echo "$first" | sed 's/sk-ccg-[A-Za-z0-9_-]*/sk-ccg-…/; s/password [^ ]*/password …/'
KEY="$(echo "$first" | grep -o 'sk-ccg-[A-Za-z0-9_-]*' | head -1)"
[ -n "$KEY" ] || { echo "install.sh printed no tenant key" >&2; exit 1; }
test -x "$ROOT/opt/ccgate/venv/bin/python"
[ "$(in_root stat -c %U:%a /etc/ccgate/server.json)" = ccgate:600 ]  # names from the root's passwd
systemd-analyze verify --root="$ROOT" /etc/systemd/system/ccgate.service
echo "systemd-analyze verify: clean"

# The owner's next step: a real upstream (here the mock on the host).
python3 - "$ROOT/etc/ccgate/upstreams.json" "$MOCK" <<'PY'
import json, sys
path, port = sys.argv[1], int(sys.argv[2])
data = json.load(open(path))
data["upstreams"][0].update(url=f"http://127.0.0.1:{port}", key="sk-upstream-install-check-1")
open(path, "w").write(json.dumps(data, indent=2))
PY
(cd "$SRC" && exec python3 -m tests.mock_upstream install-check "$MOCK") &
MOCK_PID=$!
python3 -c "
import socket, time
for _ in range(100):
    try:
        socket.create_connection(('127.0.0.1', $MOCK), 1).close(); break
    except OSError:
        time.sleep(0.1)"

serve() {  # the unit's ExecStart, user and environment (setpriv execs: $! is the gateway)
  chroot "$ROOT" "${CLEAN_ENV[@]}" setpriv --reuid=ccgate --regid=ccgate --init-groups env CCGATE_CONFIG_DIR=/etc/ccgate CCGATE_DATA_DIR=/var/lib/ccgate \
    PYTHONUNBUFFERED=1 /opt/ccgate/venv/bin/python /opt/ccgate/app/app.py --host 127.0.0.1 \
    --port "$PORT" > "$ROOT/var/tmp/gateway.log" 2>&1 &
  GW_PID=$!
}
ask() {  # /health, then a request with the printed key
  python3 - "$PORT" "$KEY" <<'PY'
import json, sys, time, urllib.error, urllib.request
port, key = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
for _ in range(150):
    try:
        health = json.load(urllib.request.urlopen(base + "/health", timeout=2)); break
    except urllib.error.HTTPError as e:
        sys.exit(f"/health answered {e.code}: {e.read()[:300]!r}")
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("the installed gateway did not answer /health")
req = urllib.request.Request(base + "/anthropic/v1/messages", method="POST", data=json.dumps(
    {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
).encode(), headers={"x-api-key": key, "content-type": "application/json"})
answer = json.load(urllib.request.urlopen(req, timeout=10))
assert "install-check" in answer["content"][0]["text"], answer
print(f"installed gateway: /health {health['status']}, a request served with the printed key")
PY
}
stop() { kill -TERM "$GW_PID"; wait "$GW_PID"; GW_PID=; }  # a clean stop exits 0
serve; ask || { cat "$ROOT/var/tmp/gateway.log" >&2; exit 1; }; stop
ls "$ROOT"/var/lib/ccgate/usage/*/*/*.json > /dev/null  # the record, under the data directory

again="$(in_root bash /root/src/deploy/install.sh)"
echo "$again"
echo "$again" | grep -q "kept the config in /etc/ccgate"
if echo "$again" | grep -q sk-ccg-; then echo "the upgrade printed a new key" >&2; exit 1; fi
serve; ask || { cat "$ROOT/var/tmp/gateway.log" >&2; exit 1; }; stop
echo "install check: passed (install, verify, serve, upgrade, serve again)"
