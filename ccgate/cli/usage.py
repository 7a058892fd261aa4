"""``ccgate usage``: usage per tenant and day, and moving records between stores."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date, datetime, timedelta

import click

from ..config.load import ConfigError, load_config
from ..config.settings import StorageConfig
from ..usage import open_store
from ..usage.dayfile import SAFE_ID
from .common import Paths, fail, table

COUNTERS = ("requests", "errors", "inputTokens", "outputTokens", "cacheCreationTokens",
            "cacheReadTokens", "totalTokens", "costUSD")


def _open_store(paths: Paths, kind: str | None):
    """The usage store the config names (or ``kind``), with the config's time zone."""
    try:
        config = load_config(paths.config_dir)
        storage, tz_name, configured = config.storage, config.usage_timezone, [t.id for t in config.tenants]
    except ConfigError:
        storage, tz_name, configured = StorageConfig.from_doc({}), "UTC", []
    storage = replace(storage, type=kind or storage.type)
    if storage.type == "redis" and not storage.url:
        fail(["redis store: set storage.url in server.json or CCGATE_REDIS_URL"], 2)
    store = open_store(storage, paths.data_dir, spool=False)
    from zoneinfo import ZoneInfo
    return store, ZoneInfo(tz_name), configured


@click.group(invoke_without_command=True)
@click.option("--tenant", "tenant_id", help="Only this tenant.")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366))
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.pass_context
def usage(ctx: click.Context, tenant_id: str | None, days: int, fmt: str) -> None:
    """Usage per tenant and day from the store (or: usage export / usage import)."""
    if ctx.invoked_subcommand is not None:
        return
    store, tz, configured = _open_store(ctx.obj, None)
    from ..usage.store import StoreUnavailable
    today = datetime.now(tz).date()
    rows = []
    try:
        tenants = [tenant_id] if tenant_id else sorted(set(configured) | set(store.tenants()))
        for t in tenants:
            for day, totals in store.range_totals(t, today - timedelta(days=days - 1), today):
                counters = totals.as_dict()
                rows.append({"tenant": t, "date": day.isoformat(), **{k: counters[k] for k in COUNTERS}})
    except StoreUnavailable as e:
        fail([str(e)], 1)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["tenant", "date", *COUNTERS])
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
    else:
        lines = [("TENANT", "DATE", "REQUESTS", "ERRORS", "TOKENS", "COST USD")]
        lines += [(r["tenant"], r["date"], r["requests"], r["errors"], r["totalTokens"],
                   f"{r['costUSD']:.4f}") for r in rows]
        table(lines)


@usage.command("export")
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--tenant", "tenant_id", help="Only this tenant.")
@click.option("--store", "kind", type=click.Choice(["file", "redis"]),
              help="Read this store instead of the configured one.")
@click.pass_obj
def usage_export(paths: Paths, first: datetime, last: datetime, tenant_id: str | None,
                 kind: str | None) -> None:
    """Write records as JSON lines (the CCGate record format) to standard output."""
    store, _, configured = _open_store(paths, kind)
    count = 0
    try:
        tenants = [tenant_id] if tenant_id else sorted(set(configured) | set(store.tenants()))
        day = first.date()
        while day <= last.date():
            for t in tenants:
                for record in store.records(t, day):
                    click.echo(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
                    count += 1
            day += timedelta(days=1)
    finally:
        store.close()
    click.echo(f"exported {count} records", err=True)


@usage.command("import")
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--store", "kind", type=click.Choice(["file", "redis"]),
              help="Write into this store instead of the configured one.")
@click.pass_obj
def usage_import(paths: Paths, source, kind: str | None) -> None:
    """Read JSON-lines records (from a file or standard input) into the store; records already
    there (same requestId) are skipped, so an import can be repeated."""
    store, tz, _ = _open_store(paths, kind)
    added = skipped = bad = 0
    seen: dict[tuple[str, date], set] = {}
    try:
        for n, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
                tenant = record["tenantId"]
                if not isinstance(tenant, str) or not SAFE_ID.fullmatch(tenant):
                    raise ValueError(f"bad tenantId {tenant!r}")
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                click.echo(f"line {n}: skipped ({e})", err=True)
                bad += 1
                continue
            day = stamp.astimezone(tz).date()
            ids = seen.get((tenant, day))
            if ids is None:
                ids = seen[(tenant, day)] = {r.get("requestId") for r in store.records(tenant, day)}
            if record.get("requestId") in ids:
                skipped += 1
                continue
            store.append(record, day)
            ids.add(record.get("requestId"))
            added += 1
    finally:
        store.close()
    click.echo(f"imported {added} records ({skipped} already there, {bad} unreadable)")
