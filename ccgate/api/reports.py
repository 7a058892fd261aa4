"""The numbers behind the admin dashboard, assembled from the usage store and the pool (no Flask)."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Callable, Protocol

from ..alerts.watchdog import Watchdog
from ..config.load import Config
from ..tenants import TenantRegistry, mask
from ..upstreams.pool import Pool
from ..usage.limits import Limiter
from ..config.problems import configured_models
from ..config.watcher import ConfigWatcher
from ..resources.owners import OwnerStore
from ..usage.catalogue import retired_since
from ..usage.find import id_second
from ..usage.pricing import PriceBook
from ..upstreams.budget import balance_left
from ..usage.store import Counters, DayTotals, UsageStore


class Reported(Protocol):
    """What the dashboard's numbers read of the running gateway."""
    config: Config
    limiter: Limiter
    pool: Pool
    prices: PriceBook
    store: UsageStore
    tenants: TenantRegistry
    owners: OwnerStore
    watchdog: Watchdog
    watcher: ConfigWatcher
    clock: Callable[[], float]


def _tenant_ids(gw: Reported) -> list[str]:
    """Configured tenants first, then any tenant that only has records (removed, or Node data)."""
    ids = [t.id for t in gw.tenants.tenants]
    return ids + [t for t in gw.store.tenants() if t not in ids]


def _with_rate(counters: Counters) -> dict:
    out = counters.as_dict()
    prompt = counters.inputTokens + counters.cacheCreationTokens + counters.cacheReadTokens
    out["cacheHitRate"] = round(counters.cacheReadTokens / prompt, 4) if prompt else 0.0
    return out


def _today(gw: Reported) -> date:
    return gw.limiter.local_now(gw.clock()).date()


def tenant_days(gw: Reported, tenant_id: str, first: date, last: date) -> list[tuple[date, DayTotals]]:
    return gw.store.range_totals(tenant_id, first, last)


def overview(gw: Reported, days: int = 30) -> dict:
    """Today and this month over all tenants, cost per day per tenant, per-model split."""
    today = _today(gw)
    first = min(today - timedelta(days=days - 1), today.replace(day=1))
    day_total, month_total = DayTotals(), DayTotals()
    series: dict[str, list[float]] = {}
    dates = [today - timedelta(days=days - 1 - i) for i in range(days)]
    for tenant_id in _tenant_ids(gw):
        per_day = dict(tenant_days(gw, tenant_id, first, today))
        day_total.merge(per_day[today])
        for d, totals in per_day.items():
            if d >= today.replace(day=1):
                month_total.merge(totals)
        costs = [round(per_day[d].costUSD, 6) for d in dates]
        if any(costs):
            series[tenant_id] = costs
    return {
        "date": today.isoformat(),
        "timezone": gw.config.usage_timezone,
        "configProblem": gw.watcher.problem,
        "today": _with_rate(day_total),
        "month": _with_rate(month_total),
        "costByDay": {"dates": [d.isoformat() for d in dates], "tenants": series},
        "models": {
            "today": {m: c.as_dict() for m, c in sorted(day_total.by_model.items())},
            "month": {m: c.as_dict() for m, c in sorted(month_total.by_model.items())},
        },
    }


def tenants(gw: Reported) -> list[dict]:
    today = _today(gw)
    month_start = today.replace(day=1)
    out = []
    for tenant_id in _tenant_ids(gw):
        tenant = gw.tenants.by_id.get(tenant_id)
        per_day = dict(tenant_days(gw, tenant_id, month_start, today))
        month = Counters()
        for totals in per_day.values():
            month.merge(totals)
        daily_max = tenant.limits.daily_usd if tenant else 0.0
        spent = per_day[today].costUSD
        out.append({
            "id": tenant_id,
            "name": tenant.name if tenant else tenant_id,
            "configured": tenant is not None,
            "enabled": tenant.enabled if tenant else False,
            "key": mask(tenant.config.key) if tenant and tenant.config.key else "sha256:…",
            "allowedModels": list(tenant.allowed.patterns) if tenant else [],
            "limits": tenant.limits.as_doc() if tenant else {},
            "windows": gw.limiter.limits_view(tenant_id, tenant.limits, gw.clock()) if tenant else {},
            "expiresAt": tenant.expires_at.isoformat() if tenant and tenant.expires_at else None,
            "expired": bool(tenant and tenant.expired(gw.clock())),
            "today": per_day[today].as_dict(),
            "month": month.as_dict(),
            "dailyLimitUsed": round(spent / daily_max, 4) if daily_max else None,
        })
    return out


def _upstream_usage(gw: Reported) -> tuple[dict[str, Counters], dict[str, Counters]]:
    """Per upstream, today's and this month's counters over every tenant."""
    today = _today(gw)
    day, month = {}, {}
    for tenant_id in _tenant_ids(gw):
        for d, totals in tenant_days(gw, tenant_id, today.replace(day=1), today):
            for uid, counters in totals.by_upstream.items():
                month.setdefault(uid, Counters()).merge(counters)
                if d == today:
                    day.setdefault(uid, Counters()).merge(counters)
    return day, month


def upstreams(gw: Reported) -> dict:
    """The pool's state with each upstream's money: usage today and this month at list price
    and at what it charges, its limits and what is left of its prepaid balance."""
    rows = gw.pool.snapshot()
    day, month = _upstream_usage(gw)
    for row in rows:
        row["errorRate"] = round(row["errors"] / row["requests"], 4) if row["requests"] else 0.0
        config = gw.pool.by_id[row["id"]].config
        left = balance_left(config, gw.watchdog.spend_of(row["id"]))
        row.update({
            "today": day.get(row["id"], Counters()).as_dict(),
            "month": month.get(row["id"], Counters()).as_dict(),
            "priceMultiplier": config.price_multiplier,
            "limits": {k: v for k, v in (("dailyUSD", config.daily_usd),
                                         ("monthlyUSD", config.monthly_usd)) if v},
            "balanceUSD": config.balance_usd,
            "balanceSetAt": config.balance_set_at.isoformat() if config.balance_set_at else None,
            "balanceLeftUSD": round(left, 6) if left is not None else None,
            "budget": gw.pool.by_id[row["id"]].budget_reason})
    return {"strategy": gw.pool.strategy_name, "upstreams": rows}


def prices(gw: Reported, days: int = 30) -> list[dict]:
    """The price of each model seen in the last ``days`` days or named by the config, where it
    came from, and the config's warnings about it (retired, no price of its own)."""
    today = _today(gw)
    seen = {model for _, model in configured_models(gw.config.openai, gw.config.tenants)}
    for tenant_id in _tenant_ids(gw):
        for _, totals in tenant_days(gw, tenant_id, today - timedelta(days=days - 1), today):
            seen.update(totals.by_model)
    rows = []
    for model in sorted(seen):
        row, retired = gw.prices.describe(model), retired_since(model, today)
        if retired:
            row["warning"] = f"retired on {retired}: requests for it fail"
        rows.append(row)
    return rows


def requests(gw: Reported, limit: int = 100, tenant_id: str | None = None) -> list[dict]:
    keep = ("requestId", "timestamp", "tenantId", "model", "requestedModel", "api", "stream",
            "statusCode", "errorType", "upstream", "inputTokens", "outputTokens",
            "cacheCreationTokens", "cacheReadTokens", "totalTokens", "totalCost", "duration",
            "ttfbMs", "interrupted", "attempts")
    return [{k: r.get(k) for k in keep} for r in gw.store.recent(_today(gw), limit, tenant_id)]


DETAIL_DAYS = 7  # how far back a request's detail is looked up


def request_detail(gw: Reported, request_id: str, pause: Callable[[], None],
                   tenant_id: str | None = None) -> dict | None:
    """The final usage record of one request (its routing log included): in the day its id
    says it arrived (else each of the last ``DETAIL_DAYS``, newest first), of ``tenant_id`` or
    of each tenant; ``pause`` between reads."""
    now, second = gw.clock(), id_second(request_id)
    if second is not None and 0 <= now - second <= DETAIL_DAYS * 86400:
        days = sorted({gw.limiter.local_now(t).date() for t in (second, second + 2)}, reverse=True)
    else:
        second, today = None, _today(gw)
        days = [today - timedelta(days=back) for back in range(DETAIL_DAYS)]
    for day in days:
        for tenant in [tenant_id] if tenant_id else _tenant_ids(gw):
            found = gw.store.find(request_id, tenant, day, second, pause)
            if found is not None:
                return found
    return None


def usage(gw: Reported, first: date, last: date, tenant_id: str | None = None) -> dict:
    ids = [tenant_id] if tenant_id else _tenant_ids(gw)
    return {"from": first.isoformat(), "to": last.isoformat(), "tenants": {
        t: [{"date": d.isoformat(), **totals.as_dict()} for d, totals in tenant_days(gw, t, first, last)]
        for t in ids}}


def unmetered_batches(gw: Reported) -> list[dict]:
    """Batches whose results never passed the gateway whole: what they ran is not billed yet
    (Anthropic bills the operator when a batch runs; the gateway bills the tenant when its
    results are downloaded through it)."""
    rows = []
    for tenant in gw.tenants.tenants:
        for owned in gw.owners.owned_by("batches", tenant.id):
            if owned.notes.get("resultsDone"):
                continue
            obj = owned.object
            rows.append({"id": owned.id, "tenant": tenant.id, "upstream": owned.upstream,
                         "created": obj.get("created_at"), "status": obj.get("processing_status"),
                         "requestCounts": obj.get("request_counts"),
                         "estimateUSD": owned.notes.get("estimateUSD"),
                         "resultsBilled": owned.notes.get("resultsBilled", 0)})
    return rows
