"""The gateway's background upkeep: upstream budgets, alerts on what changed, the daily summary.

One greenlet, owned here, ticks every second. Per request there is only ``record``: O(1), it adds
the record's upstream cost and marks its tenant for a limit check on the next tick. Every 30 s
the upstreams' spend is summed again from the store, so several instances agree.
"""
from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Protocol


from . import events
from .sender import AlertSender
from ..config.settings import AlertsConfig
from ..upstreams.budget import (UpstreamSpend, balance_left, balance_low, budget_verdict,
                               spend_from_store)
from ..config.load import Config
from ..core.periodic import Periodic
from ..shared.local import SharedState
from ..tenants import TenantRegistry
from ..upstreams.pool import Pool
from ..usage.limits import Limiter
from ..usage.store import StoreUnavailable, UsageStore, is_error


log = logging.getLogger("ccgate.watchdog")
TICK_S = 1.0
REFRESH_S = 30.0
WARN_AT = 0.8
SUMMARY_CLAIM_S = 26 * 3600


class Watched(Protocol):
    """What the watchdog reads of the running gateway (the gateway is one)."""
    config: Config
    limiter: Limiter
    pool: Pool
    shared: SharedState
    store: UsageStore
    tenants: TenantRegistry
    clock: Callable[[], float]
    data_dir: Path


class Watchdog:
    def __init__(self, gw: Watched, alerts: AlertsConfig):
        self.gw = gw
        self.alerts = AlertSender(alerts, gw.shared)
        self.spend: dict[str, UpstreamSpend] = {}
        self._before_set: dict = {}  # spend_from_store's cache: a balance day's cost before it
        self._down: dict[str, str | None] = {}  # upstream -> why it is out of rotation
        self._dirty: set[str] = set()  # tenants to check against their limits
        self._refreshed = 0.0
        self._summary_day = None
        self._loop = Periodic("watchdog", TICK_S, self.tick)

    def configure(self, alerts: AlertsConfig) -> None:
        """A new config: new alert settings, and budgets judged again (balances may have changed)."""
        self.alerts.configure(alerts)
        if self._loop.alive:
            self.refresh()

    # -- budgets ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Sum every upstream's spend again from the store and apply the budget verdicts."""
        gw = self.gw
        today = gw.limiter.local_now(gw.clock()).date()
        configs = {s.id: s.config for s in gw.pool.states}
        try:
            self.spend = spend_from_store(gw.store, gw.store.tenants(), configs, today,
                                          gw.limiter.tz, self._before_set)
        except StoreUnavailable:
            return
        self._refreshed = time.monotonic()
        for state in gw.pool.states:
            state.budget_reason = budget_verdict(state.config, self.spend_of(state.id))

    def spend_of(self, upstream_id: str) -> UpstreamSpend:
        return self.spend.setdefault(upstream_id, UpstreamSpend())

    def record(self, record) -> None:
        """A usage record was written (the meter's observer): count its cost, note its tenant."""
        self._dirty.add(record.tenantId)
        state = self.gw.pool.by_id.get(record.upstream) if record.upstream else None
        if state is None or not record.upstreamCost:
            return
        spend = self.spend_of(state.id)
        spend.today += record.upstreamCost
        spend.month += record.upstreamCost
        set_at = state.config.balance_set_at
        if set_at is not None and datetime.fromisoformat(
                record.timestamp.replace("Z", "+00:00")) >= set_at:
            spend.since_balance += record.upstreamCost
        state.budget_reason = budget_verdict(state.config, spend)

    # -- alerts -------------------------------------------------------------------------------
    def check_upstreams(self) -> None:
        now = self.gw.pool.clock()
        for state in self.gw.pool.states:
            if not state.config.enabled:
                self._down.pop(state.id, None)
                continue
            reason = None if state.healthy(now) else (state.snapshot(now)["reason"] or "down")
            was = self._down.get(state.id)
            if reason and not was:
                self.alerts.emit(events.upstream_down(state.id, state.config.name, reason))
            elif was and not reason:
                self.alerts.emit(events.upstream_recovered(state.id, state.config.name))
            self._down[state.id] = reason
            if balance_low(state.config, self.spend_of(state.id)):
                self.alerts.emit(events.upstream_budget_low(
                    state.id, state.config.name, balance_left(state.config, self.spend_of(state.id)),
                    state.config.balance_usd))

    def check_tenants(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for tenant_id in dirty:
            tenant = self.gw.tenants.by_id.get(tenant_id)
            if tenant is None or not tenant.limits.has_spend_limit:
                continue
            try:
                view = self.gw.limiter.limits_view(tenant_id, tenant.limits, self.gw.clock())
            except StoreUnavailable:
                continue
            for name, window in view.items():
                if isinstance(window, dict) and window["usedUSD"] >= WARN_AT * window["maxUSD"]:
                    self.alerts.emit(events.tenant_limit(
                        tenant_id, tenant.name, name, window, reached=window["exceeded"],
                        period_s=self._period_left(name, window)))

    def _period_left(self, name: str, window: dict) -> float:
        """How long one alert per limit period lasts: until the reset (5 h for the window)."""
        if name == "window5h":
            return 5 * 3600.0
        reset = datetime.fromisoformat(window["resetsAt"]).timestamp()
        return max(600.0, reset - self.gw.clock())

    def summary_due(self) -> None:
        """Once a day at ``alerts.dailySummaryAt``: the day before, in numbers."""
        local = self.gw.limiter.local_now(self.gw.clock())
        if self._summary_day == local.date() or \
                local.strftime("%H:%M") < self.gw.config.alerts.daily_summary_at:
            return
        self._summary_day = local.date()
        if "daily_summary" not in self.gw.config.alerts.events or not self.gw.config.alerts.targets:
            return
        day = local.date() - timedelta(days=1)
        if self._summarized(day) or not self.gw.shared.claim(f"daily_summary:{day}",
                                                              SUMMARY_CLAIM_S):
            return
        self.alerts.emit(self._summary(day))
        self._remember_summary(day)

    def _marker(self) -> Path:
        return Path(self.gw.data_dir) / "state" / "daily-summary"

    def _summarized(self, day) -> bool:
        """Whether ``day``'s summary went out already (by this or an earlier run)."""
        try:
            return self._marker().read_text().strip() >= day.isoformat()
        except OSError:
            return False

    def _remember_summary(self, day) -> None:
        """A restart must not send the same summary again: the day is written down."""
        marker = self._marker()
        try:
            marker.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = marker.with_name(f".{marker.name}.{os.getpid()}")
            tmp.write_text(day.isoformat() + "\n")
            os.replace(tmp, marker)
        except OSError as e:
            log.warning("the daily summary of %s was sent, but %s cannot be written (%s): a "
                        "restart today may send it again", day, marker, e.strerror or e)

    def _summary(self, day) -> events.Alert:
        tenants, upstreams, requests, errors, failovers = {}, {}, 0, 0, 0
        for tenant_id in self.gw.store.tenants():
            records = self.gw.store.records(tenant_id, day)
            for r in records:
                tenants[tenant_id] = tenants.get(tenant_id, 0.0) + float(r.get("totalCost") or 0)
                if r.get("upstream"):
                    upstreams[r["upstream"]] = (upstreams.get(r["upstream"], 0.0)
                                                + float(r.get("upstreamCost") or 0))
                errors += is_error(r)
                failovers += len(r.get("attempts") or ()) > 1
            requests += len(records)
        return events.daily_summary(day.isoformat(), tenants, upstreams, requests, errors,
                                    failovers)

    # -- the greenlet -------------------------------------------------------------------------
    def tick(self) -> None:
        if time.monotonic() - self._refreshed >= REFRESH_S:
            self.refresh()
        self.check_upstreams()
        self.check_tenants()
        self.summary_due()

    def start(self) -> None:
        self.refresh()
        self.alerts.start()
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
        self.alerts.stop()
