"""The ``ccgate`` command group: ``python cli.py <cmd>`` and ``flask ccgate <cmd>``.

Every command honours ``--config-dir``/``--data-dir`` (or ``CCGATE_CONFIG_DIR``/``CCGATE_DATA_DIR``)
and reports problems as plain lines with an exit status, never a traceback.
"""
from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import click

from ..config.first_run import new_tenant_key
from ..config.load import TENANTS_FILE, ConfigError, hash_key, load_config
from ..config.edits import EditRefused, add_tenant, set_tenant_key
from ..config.files import ConfigFiles, EditInvalid, iso_now
from ..usage.dayfile import SAFE_ID
from .common import Paths, fail, table
from .backup import backup, restore
from .usage import usage

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config-dir", envvar="CCGATE_CONFIG_DIR", default="config", show_default=True,
              help="Directory with server/upstreams/tenants.json.")
@click.option("--data-dir", envvar="CCGATE_DATA_DIR", default="data", show_default=True,
              help="Directory with usage records and logs.")
@click.pass_context
def cli(ctx: click.Context, config_dir: str, data_dir: str) -> None:
    """CCGate operations: validate config, check health, manage keys, usage and data."""
    ctx.obj = Paths(config_dir, data_dir)


@cli.command()
@click.pass_obj
def validate(paths: Paths) -> None:
    """Check every config file; print each problem as file: json.path: message."""
    try:
        config = load_config(paths.config_dir)
    except ConfigError as e:
        fail(e.lines + [f"{len(e.lines)} problem(s) in {paths.config_dir}"])
    problems = list(config.problems)
    if problems:
        fail(problems + [f"{len(problems)} problem(s) in {paths.config_dir}"])
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)
    enabled = sum(1 for u in config.upstreams if u.enabled)
    pricing = "pricing.json" if config.pricing is not None else "built-in prices"
    click.echo(f"OK: {len(config.upstreams)} upstreams ({enabled} enabled), {len(config.tenants)} "
               f"tenants, strategy {config.load_balancer.strategy}, {pricing}")


def health_url(url: str) -> str:
    """``--url`` as given, or the gateway's base URL with ``/health`` appended."""
    base = url.split("?", 1)[0].rstrip("/")
    return base if base.endswith("/health") else base + "/health"


def _default_health_url(paths: Paths) -> str:
    host, port = "127.0.0.1", int(os.environ.get("PORT") or 3000)
    try:
        config = load_config(paths.config_dir)
        port = int(os.environ.get("PORT") or config.port)
        if config.host not in ("0.0.0.0", "::", ""):
            host = config.host
    except ConfigError:
        pass
    return f"http://{host}:{port}/health"


@cli.command()
@click.option("--url", help="The gateway's base URL or its /health URL (default: from the config, "
                           "or PORT).")
@click.pass_obj
def health(paths: Paths, url: str | None) -> None:
    """Ask a running gateway for /health. Exit 0 ok, 1 degraded or down, 2 not running."""
    import requests
    url = health_url(url) if url else _default_health_url(paths)
    try:
        r = requests.get(url, timeout=5)
        body = r.json()
    except requests.RequestException as e:
        fail([f"not running: {url} ({type(e).__name__})"], 2)
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") not in ("ok", "degraded", "down"):
        fail([f"not a CCGate /health answer at {url} (HTTP {r.status_code}): is that the "
              f"gateway's address?"], 2)
    click.echo(f"status {body.get('status')} · version {body.get('version')} · "
               f"uptime {body.get('uptime')} s")
    rows = [("UPSTREAM", "HEALTHY", "IN FLIGHT", "REQUESTS", "ERRORS", "P50 MS", "REASON")]
    for u in body.get("upstreams", []):
        rows.append((u["id"], "yes" if u["healthy"] else "no", str(u.get("inFlight", "")),
                     str(u.get("requests", "")), str(u.get("errors", "")),
                     str(u.get("p50LatencyMs") or "-"), u.get("reason") or ""))
    table(rows)
    sys.exit(0 if body.get("status") == "ok" else 1)


def _old_enough(path: Path, before: date | None, usage: bool) -> bool:
    if before is None:
        return True
    if usage:
        try:
            return date.fromisoformat(path.stem) < before
        except ValueError:
            return False
    modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).date()
    return modified < before


@cli.command()
@click.option("--logs", is_flag=True, help="Delete log files.")
@click.option("--usage", is_flag=True, help="Delete usage day files.")
@click.option("--before", type=click.DateTime(["%Y-%m-%d"]),
              help="Only what is older than this day (usage: by the file's day; logs: modified).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def clean(paths: Paths, logs: bool, usage: bool, before: datetime | None, yes: bool) -> None:
    """Delete logs and/or usage data, listing what goes first."""
    if not logs and not usage:
        fail(["say what to delete: --logs, --usage or both"], 2)
    cutoff = before.date() if before else None
    victims = []
    if logs:
        victims += [p for p in sorted((paths.data_dir / "logs").glob("*.log*"))
                    if _old_enough(p, cutoff, False)]
    if usage:
        victims += [p for p in sorted((paths.data_dir / "usage").glob("*/*/*.json"))
                    if _old_enough(p, cutoff, True)]
    if not victims:
        click.echo("nothing to delete")
        return
    for p in victims:
        click.echo(f"  {p}")
    if not yes and not click.confirm(f"delete these {len(victims)} files?"):
        fail(["nothing deleted"], 1)
    for p in victims:
        p.unlink(missing_ok=True)
    for d in sorted((paths.data_dir / "usage").glob("*/*"), reverse=True) + \
            sorted((paths.data_dir / "usage").glob("*")):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    click.echo(f"deleted {len(victims)} files")


@cli.command()
@click.option("--tenant", "tenant_id", default="new-tenant", help="The tenant id for the snippet.")
@click.option("--add", is_flag=True, help="Write the key's hash into tenants.json: the tenant's "
                                          "old key stops working (a new tenant is created).")
@click.pass_obj
def keygen(paths: Paths, tenant_id: str, add: bool) -> None:
    """Print a new random tenant key and its sha256 hash for tenants.json."""
    key = new_tenant_key()
    if add:
        _add_key(paths, tenant_id, key)
        return
    click.echo(f"key:     {key}")
    click.echo(f"keyHash: sha256:{hash_key(key)}")
    click.echo("tenants.json entry (the plain key is then needed nowhere else):")
    click.echo(json.dumps({"id": tenant_id, "name": tenant_id, "keyHash": f"sha256:{hash_key(key)}",
                           "enabled": True, "allowedModels": ["*"],
                           "limits": {"daily": {"maxUSD": 10}}}, indent=2))


def _add_key(paths: Paths, tenant_id: str, key: str) -> None:
    """Put ``key``'s hash on tenant ``tenant_id`` in tenants.json (other keys and order kept)."""
    if not SAFE_ID.fullmatch(tenant_id):
        fail([f"--tenant: {tenant_id!r}: use letters, digits, '_', '.' and '-' only"], 1)
    key_hash, now = f"sha256:{hash_key(key)}", iso_now()

    def change(doc) -> bool:
        try:
            set_tenant_key(doc, tenant_id, key_hash, now)
            return False
        except EditRefused as e:
            if e.status != 404:
                raise
        add_tenant(doc, {"id": tenant_id, "allowedModels": ["*"]}, key_hash, now)
        return True

    try:
        created, _ = ConfigFiles(paths.config_dir).edit(TENANTS_FILE, change)
    except EditRefused as e:
        fail([e.message], 1)
    except EditInvalid as e:
        fail(e.problems, 1)
    click.echo(f"key: {key}")
    click.echo(f"{'created tenant' if created else 'new key for tenant'} {tenant_id!r} in "
               f"{paths.config_dir / TENANTS_FILE} (only the hash is stored: this is the one copy "
               f"of the key). A running gateway takes it within a second"
               + ("" if created else "; the old key stops working."))


@cli.command("hash-password")
def hash_password() -> None:
    """Prompt for a password and print its werkzeug hash for admin.password."""
    from werkzeug.security import generate_password_hash
    password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        fail(["use at least 8 characters"], 1)
    click.echo(generate_password_hash(password))


cli.add_command(usage)
cli.add_command(backup)
cli.add_command(restore)
