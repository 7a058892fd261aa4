#!/usr/bin/env bash
# Install or upgrade CCGate on a fresh Debian or Ubuntu, as root, from this checkout:
#   sudo bash deploy/install.sh
# Idempotent: run it again after `git pull` to upgrade (the config and the data are kept).
#   /opt/ccgate/app    the code (replaced on every run)
#   /opt/ccgate/venv   the virtualenv (requirements.txt)
#   /etc/ccgate        the config (created once by the first run; never overwritten)
#   /var/lib/ccgate    usage records, logs
# A system user "ccgate" runs the service (deploy/ccgate.service, hardened). Prints what it did and,
# on the first install only, the admin password and a tenant key (shown once).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root (sudo bash deploy/install.sh)" >&2; exit 1; }
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${CCGATE_PREFIX:-/opt/ccgate}"
say() { echo "ccgate install: $*"; }

if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  say "installing python3 and python3-venv with apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3 python3-venv ca-certificates >/dev/null
fi
if ! id ccgate >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/ccgate --shell /usr/sbin/nologin ccgate
  say "created the system user ccgate"
fi
install -d -m 0755 "$PREFIX"
install -d -m 0700 -o ccgate -g ccgate /etc/ccgate /var/lib/ccgate
rm -rf "$PREFIX/app.new"
mkdir "$PREFIX/app.new"
# Anchored: an unanchored 'config/*.json' would also drop ccgate/config/schemas/*.json.
( cd "$SRC" && tar --anchored --exclude=./.git --exclude=./data --exclude='./config/*.json' \
    --exclude=./tests --exclude=./.ci --exclude=./bench --no-anchored --exclude=__pycache__ \
    -cf - . ) | tar -C "$PREFIX/app.new" -xf -
rm -rf "$PREFIX/app.old"
[ -d "$PREFIX/app" ] && mv "$PREFIX/app" "$PREFIX/app.old"
mv "$PREFIX/app.new" "$PREFIX/app"
rm -rf "$PREFIX/app.old"
say "code in $PREFIX/app"
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check -r "$PREFIX/app/requirements.txt"
say "virtualenv $PREFIX/venv up to date with requirements.txt"

# The first run: the config, with the credentials shown once (an existing config is kept).
message="$(runuser -u ccgate -- env HOME=/var/lib/ccgate "$PREFIX/venv/bin/python" -c "
import sys; sys.path.insert(0, '$PREFIX/app')
from pathlib import Path
from ccgate.config.first_run import first_run
print(first_run(Path('/etc/ccgate'), port=3000) or '')")"
if [ -n "$message" ]; then echo "$message"; else say "kept the config in /etc/ccgate"; fi

install -m 0644 "$PREFIX/app/deploy/ccgate.service" /etc/systemd/system/ccgate.service
say "unit /etc/systemd/system/ccgate.service"
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable ccgate >/dev/null 2>&1
  systemctl restart ccgate
  say "service ccgate enabled and (re)started: systemctl status ccgate; journalctl -u ccgate"
else
  say "systemd is not running here: start it with"
  say "  runuser -u ccgate -- env CCGATE_CONFIG_DIR=/etc/ccgate CCGATE_DATA_DIR=/var/lib/ccgate $PREFIX/venv/bin/python $PREFIX/app/app.py"
fi
