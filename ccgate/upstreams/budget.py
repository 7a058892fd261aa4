"""What each upstream has cost the operator, and whether it is still within its budget.

``UpstreamSpend`` is summed from the usage store (``spend_from_store``, every 30 s and on a
config change, so several instances agree) and bumped by each record in between (``add``). The
verdicts are pure: an upstream over its daily or monthly ``limits`` (on ``upstreamCost``) or out
of its prepaid ``balanceUSD`` leaves rotation with the reason ``budget: …``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable

from ..config.settings import UpstreamConfig
from ..usage.limits import usd
from ..usage.store import UsageStore, _float

LOW_BALANCE_FRACTION = 0.10
LOW_BALANCE_USD = 1.0
MAX_BALANCE_DAYS = 400  # how far back a balance's spend is summed


@dataclass
class UpstreamSpend:
    today: float = 0.0
    month: float = 0.0
    since_balance: float = 0.0  # upstream cost since ``balanceSetAt``


def budget_verdict(config: UpstreamConfig, spend: UpstreamSpend) -> str | None:
    """Why the upstream is out of budget (``budget: …``), or None."""
    if config.daily_usd and spend.today >= config.daily_usd:
        return f"budget: daily limit of {usd(config.daily_usd)} reached ({usd(spend.today)} today)"
    if config.monthly_usd and spend.month >= config.monthly_usd:
        return (f"budget: monthly limit of {usd(config.monthly_usd)} reached "
                f"({usd(spend.month)} this month)")
    if config.balance_usd is not None and spend.since_balance >= config.balance_usd:
        return f"budget: prepaid balance of {usd(config.balance_usd)} used up"
    return None


def balance_left(config: UpstreamConfig, spend: UpstreamSpend) -> float | None:
    if config.balance_usd is None:
        return None
    return max(0.0, config.balance_usd - spend.since_balance)


def balance_low(config: UpstreamConfig, spend: UpstreamSpend) -> bool:
    """Under 10 % of the balance, or under $1 (but not yet used up)."""
    left = balance_left(config, spend)
    return left is not None and 0 < left and (
        left < config.balance_usd * LOW_BALANCE_FRACTION or left < LOW_BALANCE_USD)


def _day_of(moment: datetime, tz) -> date:
    return moment.astimezone(tz).date()


def spend_from_store(store: UsageStore, tenant_ids: Iterable[str],
                     configs: dict[str, UpstreamConfig], today: date, tz,
                     before_set: dict | None = None) -> dict[str, UpstreamSpend]:
    """Each upstream's cost today, this month and since its balance was set, from the store.

    On the day a balance was set only what came after counts: what came before is read from
    that day's records once and kept in ``before_set`` (the caller's cache), so later sums use
    the day's totals alone instead of reading its records again.
    """
    before_set = {} if before_set is None else before_set
    month_start = today.replace(day=1)
    set_days = {uid: _day_of(c.balance_set_at, tz) for uid, c in configs.items()
                if c.balance_set_at is not None}
    first = max(min([month_start, *set_days.values()]), today - timedelta(days=MAX_BALANCE_DAYS))
    out = {uid: UpstreamSpend() for uid in configs}
    for tenant in tenant_ids:
        for day, totals in store.range_totals(tenant, first, today):
            for uid, counters in totals.by_upstream.items():
                spend = out.setdefault(uid, UpstreamSpend())
                cost = counters.upstreamCostUSD
                spend.today += cost if day == today else 0.0
                spend.month += cost if day >= month_start else 0.0
                if uid not in set_days or day < set_days[uid]:
                    continue
                if day == set_days[uid]:
                    key = (tenant, uid, configs[uid].balance_set_at)
                    if key not in before_set:
                        before_set[key] = _spent_before(store.records(tenant, day), uid, key[2])
                    cost -= before_set[key]
                spend.since_balance += cost
    return out


def _spent_before(records: list[dict], upstream_id: str, moment: datetime) -> float:
    """Upstream cost of the records of one day that started before ``moment``."""
    cut = moment.timestamp()
    total = 0.0
    for r in records:
        if r.get("upstream") != upstream_id or not isinstance(r.get("timestamp"), str):
            continue
        try:
            started = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        if started < cut:
            total += _float(r.get("upstreamCost"))
    return total
