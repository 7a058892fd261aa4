"""First run: put example config in place with a fresh admin password and tenant key."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from werkzeug.security import generate_password_hash

from .load import REQUIRED_FILES, SERVER_FILE, TENANTS_FILE, UPSTREAMS_FILE, hash_key
from .files import write_atomically

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "config"  # the repository's config/
ADMIN_PASSWORD_ENV = "CCGATE_ADMIN_PASSWORD"
# Addresses or CIDRs of the reverse proxy in front (a container deployment knows them before the
# first run): written into server.trustedProxies, comma-separated.
TRUSTED_PROXIES_ENV = "CCGATE_TRUSTED_PROXIES"


def new_tenant_key() -> str:
    """A new random tenant key (192 bits)."""
    return "sk-ccg-" + secrets.token_urlsafe(32)


def first_run(config_dir: Path, examples_dir: Path = EXAMPLES_DIR,
              port: int | None = None) -> str | None:
    """Create the config from the examples when none exists yet; the message to print once, or None.

    Only hashes are written: the admin password as a werkzeug hash, the tenant key as ``keyHash``,
    so the printed values are the only copy. With ``CCGATE_ADMIN_PASSWORD`` set (a PaaS, where
    the filesystem and so the first run may come back at every deploy) that variable is the admin
    password: the file refers to it as ``${CCGATE_ADMIN_PASSWORD}`` and nothing is generated.
    ``CCGATE_TRUSTED_PROXIES`` (comma-separated) becomes ``server.trustedProxies``.
    """
    if any((config_dir / name).exists() for name in REQUIRED_FILES):
        return None
    config_dir.mkdir(parents=True, exist_ok=True)
    key = new_tenant_key()
    server = json.loads((examples_dir / f"{SERVER_FILE}.example").read_text(encoding="utf-8"))
    if os.environ.get(ADMIN_PASSWORD_ENV):
        server.setdefault("admin", {})["password"] = "${" + ADMIN_PASSWORD_ENV + "}"
        shown = f"the value of {ADMIN_PASSWORD_ENV}"
    else:
        shown = secrets.token_urlsafe(12)
        server.setdefault("admin", {})["password"] = generate_password_hash(shown)
    proxies = [p.strip() for p in os.environ.get(TRUSTED_PROXIES_ENV, "").split(",") if p.strip()]
    if proxies:
        server.setdefault("server", {})["trustedProxies"] = proxies
    tenants = json.loads((examples_dir / f"{TENANTS_FILE}.example").read_text(encoding="utf-8"))
    first = tenants["tenants"][0]
    first.pop("key", None)
    first["keyHash"] = "sha256:" + hash_key(key)
    upstreams = (examples_dir / f"{UPSTREAMS_FILE}.example").read_text(encoding="utf-8")

    for name, text in ((SERVER_FILE, json.dumps(server, indent=2, ensure_ascii=False) + "\n"),
                       (TENANTS_FILE, json.dumps(tenants, indent=2, ensure_ascii=False) + "\n"),
                       (UPSTREAMS_FILE, upstreams)):
        write_atomically(config_dir / name, text)  # mode 0600: the files hold secrets
    port = port or server.get("server", {}).get("port", 3000)  # PORT/--port win, as at start
    user = server.get("admin", {}).get("username", "admin")
    return f"""
==================================================================================
 CCGate first run: created {config_dir}/{{server,upstreams,tenants}}.json
 Shown once, only their hashes are stored:
   admin dashboard  http://<this-host>:{port}/dashboard   user {user}   password {shown}
   tenant key       {key}   (tenant "{first['id']}")
 Next steps:
   1. Put your Anthropic (or mirror) URL and key in {config_dir}/{UPSTREAMS_FILE}: saved
      changes apply within a second, no restart needed (hot reload).
   2. Claude Code:  export ANTHROPIC_BASE_URL=http://<this-host>:{port}/anthropic
                    export ANTHROPIC_AUTH_TOKEN={key}
==================================================================================
"""
