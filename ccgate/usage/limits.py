"""Admission checks per tenant: daily and monthly spend, requests per minute, concurrency.

Spend comes from the usage store (so it is shared by every process using the same data dir);
the rpm window and the in-flight count are kept in this process.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .store import UsageStore


class LimitExceeded(Exception):
    def __init__(self, limit: str, message: str, retry_after_s: int):
        super().__init__(message)
        self.limit = limit  # daily, monthly, rpm or concurrency
        self.message = message
        self.retry_after_s = max(1, retry_after_s)


@dataclass
class Admission:
    tenant_id: str
    daily_remaining_usd: float | None  # None when no daily limit is set


def limit_value(limits: dict, *path) -> float:
    """A numeric limit at ``path`` in a tenant's ``limits`` (0 when unset)."""
    node = limits
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else 0.0


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class Limiter:
    """Decides whether a tenant's next request may go upstream, and counts it while it runs."""

    def __init__(self, store: UsageStore, timezone: str):
        self.store = store
        self.set_timezone(timezone)
        self._admitted: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}

    def set_timezone(self, timezone: str) -> None:
        self.tz = ZoneInfo(timezone)

    def local_now(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, self.tz)

    def next_midnight(self, local: datetime) -> datetime:
        return datetime.combine(local.date() + timedelta(days=1), time(), self.tz)

    def next_month(self, local: datetime) -> datetime:
        first = local.date().replace(day=1)
        return datetime.combine((first + timedelta(days=32)).replace(day=1), time(), self.tz)

    def month_spend(self, tenant_id: str, local: datetime) -> float:
        today = local.date()
        days = self.store.range_totals(tenant_id, today.replace(day=1), today)
        return sum(t.costUSD for _, t in days)

    def admit(self, tenant_id: str, limits: dict, now: float) -> Admission:
        """Count the request in, or raise LimitExceeded (nothing is counted then)."""
        local = self.local_now(now)
        remaining = None
        daily = limit_value(limits, "daily", "maxUSD")
        if daily:
            spent = self.store.day_totals(tenant_id, local.date()).costUSD
            if spent >= daily:
                reset = self.next_midnight(local)
                raise LimitExceeded(
                    "daily", f"daily spending limit of ${daily:.2f} reached (${spent:.4f} spent today); "
                    f"resets at {_iso(reset)}", int((reset - local).total_seconds()))
            remaining = daily - spent
        monthly = limit_value(limits, "monthly", "maxUSD")
        if monthly:
            spent = self.month_spend(tenant_id, local)
            if spent >= monthly:
                reset = self.next_month(local)
                raise LimitExceeded(
                    "monthly", f"monthly spending limit of ${monthly:.2f} reached (${spent:.4f} spent this "
                    f"month); resets at {_iso(reset)}", int((reset - local).total_seconds()))
        rpm = int(limit_value(limits, "rpm"))
        window = self._admitted.setdefault(tenant_id, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if rpm and len(window) >= rpm:
            wait = window[0] + 60 - now
            raise LimitExceeded("rpm", f"rate limit of {rpm} requests per minute reached; retry in "
                                f"{wait:.0f} s", int(wait + 0.999))
        concurrency = int(limit_value(limits, "concurrency"))
        in_flight = self._in_flight.get(tenant_id, 0)
        if concurrency and in_flight >= concurrency:
            raise LimitExceeded("concurrency",
                                f"concurrency limit of {concurrency} requests in flight reached", 1)
        if rpm:
            window.append(now)
        self._in_flight[tenant_id] = in_flight + 1
        return Admission(tenant_id, remaining)

    def release(self, admission: Admission) -> None:
        self._in_flight[admission.tenant_id] -= 1

    def limits_view(self, tenant_id: str, limits: dict, now: float) -> dict:
        """The ``limits`` part of ``/usage``: each spend limit with what is used and left."""
        local = self.local_now(now)
        view = {}
        for name, spent_fn, reset_fn in (
                ("daily", lambda: self.store.day_totals(tenant_id, local.date()).costUSD,
                 self.next_midnight),
                ("monthly", lambda: self.month_spend(tenant_id, local), self.next_month)):
            limit = limit_value(limits, name, "maxUSD")
            if not limit:
                continue
            used = spent_fn()
            view[name] = {"maxUSD": limit, "usedUSD": round(used, 6),
                          "remainingUSD": round(max(0.0, limit - used), 6),
                          "exceeded": used >= limit, "resetsAt": _iso(reset_fn(local))}
        for name in ("rpm", "concurrency"):
            if limit_value(limits, name):
                view[name] = int(limit_value(limits, name))
        return view
