"""Admission checks per tenant: spend limits (5-hour window, day, week, month), requests per
minute, concurrency.

Recorded spend comes from the usage store; the rpm window, in-flight counts and the spend held by
running requests come from the shared counters (this process with the file store, every
instance with Redis).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from time import time as wall_clock
from zoneinfo import ZoneInfo

from ..config.settings import TenantLimits
from ..shared.ledger import LedgerUnavailable
from ..shared.local import LocalState
from .store import StoreUnavailable, UsageStore

log = logging.getLogger("ccgate.usage")


class RecordingUnavailable(Exception):
    """Usage cannot be recorded anywhere durable: tenants with spend limits are refused."""


IN_FLIGHT_RETRY_S = 5
WINDOW_S = 5 * 3600


class LimitExceeded(Exception):
    def __init__(self, limit: str, message: str, retry_after_s: int):
        super().__init__(message)
        self.limit = limit  # daily, monthly, in_flight (spend held by running requests), rpm, concurrency
        self.message = message
        self.retry_after_s = max(1, retry_after_s)


@dataclass
class Admission:
    tenant_id: str
    daily_remaining_usd: float | None  # None when no daily limit is set (or it could not be read)
    slot: object = None  # the concurrency slot, given back by ``Limiter.release``
    reservation: object = None  # the spend it holds while it runs, given back by ``release``
    live_usd: float = 0.0  # what a running stream has cost so far (cutStreams)
    opened: bool = False  # counted in the tenant's open requests (limits.maxConnections)


def usd(value: float) -> str:
    """Dollars with enough digits to be true: ``$5.00``, ``$0.05``, ``$0.0012`` (never ``$0.00``
    for a small non-zero amount)."""
    return f"${value:.2f}" if round(value, 2) == value else f"${value:.4g}"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class Limiter:
    """Decides whether a tenant's next request may go upstream, and counts it while it runs.

    When the store cannot be read (Redis down), spend limits fail open: requests keep flowing and
    the outage is logged and shown by /health.
    """

    def __init__(self, store: UsageStore, timezone: str, counters=None):
        self.store = store
        self.counters = counters or LocalState()
        self._live: dict[str, float] = {}  # per tenant: cost so far of its running streams
        self._open: dict[str, int] = {}  # per tenant: requests open in this process
        self.set_timezone(timezone)

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
        return self.store.month_cost(tenant_id, local.date())

    def week_spend(self, tenant_id: str, local: datetime) -> float:
        monday = local.date() - timedelta(days=local.weekday())
        return sum(t.costUSD for _, t in self.store.range_totals(tenant_id, monday, local.date()))

    def next_week(self, local: datetime) -> datetime:
        return datetime.combine(local.date() + timedelta(days=7 - local.weekday()), time(), self.tz)

    def _window_minutes(self, tenant_id: str, local: datetime) -> list[tuple[int, float]]:
        """Spend per minute in the last ``WINDOW_S`` seconds, oldest first."""
        start = (local.timestamp() - WINDOW_S) // 60
        merged: dict[int, float] = {}
        for _, totals in self.store.range_totals(tenant_id, local.date() - timedelta(days=1),
                                                 local.date()):
            for minute, cost in totals.minutes.items():
                if minute > start:
                    merged[minute] = merged.get(minute, 0.0) + cost
        return sorted(merged.items())

    def window_spend(self, tenant_id: str, local: datetime) -> float:
        return sum(cost for _, cost in self._window_minutes(tenant_id, local))

    def window_reset(self, tenant_id: str, limits: TenantLimits, local: datetime) -> datetime:
        """When enough of the window's spend will have aged out to be below the limit again."""
        minutes = self._window_minutes(tenant_id, local)
        left = sum(cost for _, cost in minutes)
        for minute, cost in minutes:
            left -= cost
            if left < limits.window5h_usd:
                return datetime.fromtimestamp((minute + 1) * 60 + WINDOW_S, self.tz)
        return local

    def _periods(self, tenant_id: str, limits: TenantLimits, local: datetime):
        """``(name, limit, spent(), reset(local), when)`` for each spend limit that is set."""
        for period in (
                ("window5h", limits.window5h_usd, lambda: self.window_spend(tenant_id, local),
                 lambda now: self.window_reset(tenant_id, limits, now), "in the last 5 hours"),
                ("daily", limits.daily_usd,
                 lambda: self.store.day_totals(tenant_id, local.date()).costUSD,
                 self.next_midnight, "today"),
                ("weekly", limits.weekly_usd, lambda: self.week_spend(tenant_id, local),
                 self.next_week, "this week"),
                ("monthly", limits.monthly_usd, lambda: self.month_spend(tenant_id, local),
                 self.next_month, "this month")):
            if period[1]:
                yield period

    def _check_spend(self, tenant_id: str, limits: TenantLimits, local: datetime):
        """Raise LimitExceeded for a spend limit reached; else what is left of the daily limit
        and the tightest limit as ``(name, limit, spent)``."""
        remaining, tightest = None, None
        for name, limit, spent_fn, reset_fn, when in self._periods(tenant_id, limits, local):
            spent = spent_fn()
            if spent >= limit:
                reset = reset_fn(local)
                raise LimitExceeded(
                    name, f"{name} spending limit of {usd(limit)} reached ({usd(spent)} spent "
                    f"{when}); resets at {_iso(reset)}", int((reset - local).total_seconds()))
            if name == "daily":
                remaining = limit - spent
            if tightest is None or limit - spent < tightest[1] - tightest[2]:
                tightest = (name, limit, spent)
        return remaining, tightest

    def _reserve(self, admission: Admission, limits: TenantLimits, local: datetime,
                 amount: float, now: float) -> object:
        """Hold ``amount`` (the request's worst case) against the tightest spend limit, or refuse
        by ``shared.spend_rule``: parallel requests, on any process or instance sharing the
        counters, then pass each limit by the cost of one request at most. The recorded spend
        is read by the ledger, when no release can slip in between (LimitExceeded when a
        limit is reached)."""
        tenant_id, checked = admission.tenant_id, {}

        def room() -> float:
            try:
                admission.daily_remaining_usd, checked["tightest"] = self._check_spend(
                    tenant_id, limits, local)
            except StoreUnavailable:
                log.error("spend limits of %s not checked: the usage store is unavailable",
                          tenant_id)
                return math.inf
            name, limit, spent = checked["tightest"]
            return limit - spent

        try:
            lease, held = self.counters.reserve(tenant_id, amount, room, now)
        except LedgerUnavailable as e:
            log.error("spend of %s cannot be reserved (%s): refusing its request", tenant_id, e)
            raise RecordingUnavailable() from None
        if held is not None:
            name, limit, spent = checked["tightest"]
            raise LimitExceeded(
                "in_flight", f"{name} spending limit of {usd(limit)} nearly reached: {usd(spent)} "
                f"spent and up to {usd(held)} more by requests still running; retry when they "
                f"finish", IN_FLIGHT_RETRY_S)
        return lease

    def admit(self, tenant_id: str, limits: TenantLimits, now: float, spend: bool = True,
              reserve_usd: float = 0.0) -> Admission:
        """Count the request in, or raise LimitExceeded (nothing is counted then).

        rpm and concurrency apply to every request; ``spend=False`` skips the spend limits, for
        requests that cost nothing (``count_tokens``, listing models). ``reserve_usd`` is held
        against the tenant's spend limits until ``release``: what the request may cost.
        """
        local = self.local_now(now)
        cap = limits.max_connections
        if cap and self._open.get(tenant_id, 0) >= cap:
            # Checked first and in this process only: a greedy tenant is refused at once, before
            # the store or Redis is asked anything.
            raise LimitExceeded("maxConnections", f"this key has {cap} requests open at once "
                                                  f"(limits.maxConnections); close some first", 1)
        if spend and limits.has_spend_limit and not self.store.recording_ok:
            raise RecordingUnavailable()
        admission = Admission(tenant_id, None)
        if spend and limits.has_spend_limit:
            admission.reservation = self._reserve(admission, limits, local, reserve_usd, now)
        if cap:
            self._open[tenant_id] = self._open.get(tenant_id, 0) + 1
            admission.opened = True
        try:
            self._count_in(admission, limits, now)
        except LedgerUnavailable as e:  # workers share slots and rpm in the ledger: fail closed
            log.error("limits of %s cannot be kept (%s): refusing its request", tenant_id, e)
            self.release(admission)
            raise RecordingUnavailable() from None
        return admission

    def _count_in(self, admission: Admission, limits: TenantLimits, now: float) -> None:
        """A concurrency slot, then a place in the rpm window, or LimitExceeded."""
        tenant_id = admission.tenant_id
        admission.slot = self.counters.acquire(tenant_id, limits.concurrency, now)
        if admission.slot is None:
            self.release(admission)
            raise LimitExceeded("concurrency", f"concurrency limit of {limits.concurrency} "
                                               f"requests in flight reached", 1)
        rpm = limits.rpm
        if rpm:
            wait = self.counters.rpm_admit(tenant_id, rpm, now)
            if wait is not None:
                self.release(admission)
                raise LimitExceeded("rpm", f"rate limit of {rpm} requests per minute reached; "
                                           f"retry in {wait:.0f} s", int(wait + 0.999))

    def check_fits(self, tenant_id: str, limits: TenantLimits, now: float, amount: float,
                   what: str) -> None:
        """Raise LimitExceeded unless ``amount`` more (``what`` may cost) fits every spend limit
        now: for what is billed later, where the one-request-past rule cannot hold."""
        local = self.local_now(now)
        _, tightest = self._check_spend(tenant_id, limits, local)
        if tightest is None or amount <= tightest[1] - tightest[2]:
            return
        name, limit, spent = tightest
        reset = dict((p[0], p[3]) for p in self._periods(tenant_id, limits, local))[name](local)
        raise LimitExceeded(name, f"{what} may cost up to {usd(amount)}, more than the "
                                  f"{usd(limit - spent)} left of the {name} spending limit of "
                                  f"{usd(limit)}; send fewer requests or smaller max_tokens, or "
                                  f"wait for the reset at {_iso(reset)}",
                            int((reset - local).total_seconds()))

    def stream_cost_so_far(self, admission: Admission, live_usd: float) -> None:
        """A running stream's cost so far, counted as live spend for ``limit_passed``."""
        tenant = admission.tenant_id
        self._live[tenant] = self._live.get(tenant, 0.0) + live_usd - admission.live_usd
        admission.live_usd = live_usd

    def limit_passed(self, tenant_id: str, limits: TenantLimits, now: float) -> str | None:
        """A message naming the spend limit that recorded plus live spend has passed, or None."""
        live = self._live.get(tenant_id, 0.0)
        local = self.local_now(now)
        try:
            for name, limit, spent_fn, _, when in self._periods(tenant_id, limits, local):
                spent = spent_fn() + live
                if spent >= limit:
                    return (f"{name} spending limit of {usd(limit)} reached while this stream ran "
                            f"({usd(spent)} spent {when}, this stream included); the stream was "
                            f"ended (limits.cutStreams)")
        except StoreUnavailable:
            return None
        return None

    def release(self, admission: Admission, spent: float = 0.0) -> None:
        """Give back what ``admission`` holds; ``spent``: what the request really cost."""
        if admission.opened:
            admission.opened = False
            self._open[admission.tenant_id] -= 1
        if admission.slot is not None:
            self.counters.release(admission.tenant_id, admission.slot)
        if admission.live_usd:
            self.stream_cost_so_far(admission, 0.0)
        if admission.reservation is not None:
            self.counters.unreserve(admission.tenant_id, admission.reservation, spent, wall_clock())
        admission.reservation = None

    def limits_view(self, tenant_id: str, limits: TenantLimits, now: float) -> dict:
        """The ``limits`` part of ``/usage``: each spend limit with what is used and left."""
        local = self.local_now(now)
        view = {}
        for name, limit, spent_fn, reset_fn, _ in self._periods(tenant_id, limits, local):
            used = spent_fn()
            # A sliding window with nothing in it has nothing to reset (not "now").
            resets = None if name == "window5h" and not used else _iso(reset_fn(local))
            view[name] = {"maxUSD": limit, "usedUSD": round(used, 6),
                          "remainingUSD": round(max(0.0, limit - used), 6),
                          "exceeded": used >= limit, "resetsAt": resets}
        for name, value in (("rpm", limits.rpm), ("concurrency", limits.concurrency)):
            if value:
                view[name] = value
        return view
