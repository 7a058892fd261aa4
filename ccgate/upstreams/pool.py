"""The upstream pool: per-upstream state, passive health (cooldowns), sticky sessions, ``pick``.

No I/O here: the proxy reports what happened (``succeeded`` / ``failed``) and the health prober
reports probe results; the pool only keeps score. Time comes from an injectable clock so the
cooldown rules can be tested without sleeping.
"""
from __future__ import annotations

import time
from collections import deque
from datetime import datetime, timezone
from statistics import median
from typing import Callable

from ..config.settings import UpstreamConfig
from ..shared.local import LocalState, SharedState
from ..core.wildcard import PatternSet
from .strategies import make_strategy

FIRST_COOLDOWN_S = 5.0
MAX_COOLDOWN_S = 300.0
MAX_PINS = 50_000


def _wall_clock(monotonic_at: float, monotonic_now: float) -> str:
    """A monotonic instant as an ISO 8601 UTC time, for display."""
    at = time.time() + (monotonic_at - monotonic_now)
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def best_tier(states: list["UpstreamState"]) -> list["UpstreamState"]:
    """The states of the best (lowest) ``priority`` among ``states``: lower tiers take traffic
    only while every better one is unusable."""
    if not states:
        return states
    best = min(s.priority for s in states)
    return [s for s in states if s.priority == best]


class UpstreamState:
    """One upstream's configuration plus everything the gateway has learnt about it."""

    def __init__(self, config: UpstreamConfig, index: int):
        self.id = config.id
        self.configure(config, index)
        self.in_flight = 0
        self.requests = 0
        self.errors = 0
        self.consecutive_failures = 0
        self.cooldown_until = 0.0
        self.next_cooldown_s = FIRST_COOLDOWN_S
        self.half_open = False  # a single trial request is under way after a cooldown
        self.last_error: str | None = None
        self.probe_down = False  # set by the active health check
        self.probe_reason: str | None = None
        self.budget_reason: str | None = None  # out of its upstream-cost limit or balance
        self.latencies_ms: deque[float] = deque(maxlen=100)

    def configure(self, config: UpstreamConfig, index: int) -> None:
        """Take a (re)loaded configuration; what was learnt about the upstream is kept."""
        self.config = config
        self.index = index
        self.weight = config.weight
        self.priority = config.priority
        self.models = PatternSet(config.models) if config.models else None

    def serves(self, model: str | None) -> bool:
        return self.models is None or model is None or self.models.match(model)

    def cooling(self, now: float) -> bool:
        return now < self.cooldown_until

    def healthy(self, now: float) -> bool:
        return (self.config.enabled and not self.probe_down and not self.cooling(now)
                and self.budget_reason is None)

    def snapshot(self, now: float) -> dict:
        """Public state for /health and the dashboard: no URL, no key."""
        return {
            "id": self.id,
            "name": self.config.name,
            "enabled": self.config.enabled,
            "healthy": self.healthy(now),
            "weight": self.weight,
            "reason": self.budget_reason or (self.probe_reason if self.probe_down else None) or (
                self.last_error if self.cooling(now) or self.consecutive_failures else None),
            "priority": self.priority,
            "cooldownUntil": _wall_clock(self.cooldown_until, now) if self.cooling(now) else None,
            "inFlight": self.in_flight,
            "requests": self.requests,
            "errors": self.errors,
            "p50LatencyMs": round(median(self.latencies_ms), 1) if self.latencies_ms else None,
            "configProblem": self.config.url_problem(show_url=False) or self.config.key_problem(),
        }


class Pool:
    """Chooses upstreams for requests and tracks their health."""

    def __init__(self, upstreams: tuple[UpstreamConfig, ...], strategy: str, *,
                 unhealthy_threshold: int = 3, sticky: bool = True, sticky_ttl_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic, shared: SharedState | None = None):
        self.clock = clock
        self.shared = shared or LocalState()  # RedisState when several instances balance together
        self.states: list[UpstreamState] = []
        self.by_id: dict[str, UpstreamState] = {}
        self.strategy_name = ""
        self._pins: dict[str, tuple[str, float]] = {}
        self.configure(upstreams, strategy, unhealthy_threshold=unhealthy_threshold, sticky=sticky,
                       sticky_ttl_s=sticky_ttl_s)

    def configure(self, upstreams: tuple[UpstreamConfig, ...], strategy: str, *,
                  unhealthy_threshold: int, sticky: bool, sticky_ttl_s: float) -> None:
        """(Re)load the upstream list: an upstream whose id stays keeps its health, counters and
        in-flight requests; the strategy keeps its rotation unless it is a different strategy."""
        states = []
        for i, u in enumerate(upstreams):
            state = self.by_id.get(u.id)
            if state is None:
                state = UpstreamState(u, i)
            else:
                state.configure(u, i)
            states.append(state)
        self.states = states
        self.by_id = {s.id: s for s in states}
        if strategy != self.strategy_name:
            self.strategy_name = strategy
            self.strategy = make_strategy(strategy)
        self.unhealthy_threshold = unhealthy_threshold
        self.sticky = sticky
        self.sticky_ttl_s = sticky_ttl_s

    # -- choosing ---------------------------------------------------------------------------------
    def _available(self, s: UpstreamState, now: float) -> bool:
        """Usable for a new request now: healthy, or its cooldown is over and no trial is running."""
        if not s.config.enabled or s.probe_down:
            return False
        if s.cooldown_until == 0.0:
            return True
        return not s.cooling(now) and not s.half_open

    def pick(self, model: str | None, session: str | None = None,
             exclude: frozenset[str] | set[str] = frozenset(),
             only: str | None = None) -> UpstreamState | None:
        """The upstream for the next attempt, or None when every one has been tried.
        ``only``: the one upstream that may answer (it holds the objects the request names)."""
        now = self.clock()
        eligible = [s for s in self.states if s.config.enabled and s.id not in exclude
                    and s.serves(model) and s.budget_reason is None
                    and (only is None or s.id == only)]
        if not eligible:
            return None
        usable = [s for s in eligible if self._available(s, now)]
        chosen_id = self.shared.pick(self.strategy_name, usable or eligible,
                                     session if self.sticky else None, self.sticky_ttl_s)
        if chosen_id in self.by_id:
            return self._begin(self.by_id[chosen_id])
        # Nothing shared (one instance), or Redis did not answer: choose here (fail open).
        # Fail open: when nothing is usable, still try the eligible ones rather than refuse.
        candidates = best_tier(usable or eligible)
        if session and self.sticky:
            pinned = self._pins.get(session)
            if pinned and pinned[1] > now:
                chosen = next((s for s in usable if s.id == pinned[0]), None)
                if chosen is not None:
                    # A pin on a worse tier is kept, not renewed: the session returns to the
                    # preferred tier once that has recovered and the pin has expired.
                    if chosen.priority == candidates[0].priority:
                        self._pins[session] = (chosen.id, now + self.sticky_ttl_s)
                    return self._begin(chosen)
        weighted = [s for s in candidates if s.weight > 0]
        chosen = self.strategy.pick(weighted or candidates)
        if session and self.sticky:
            self._pin(session, chosen.id, now)
        return self._begin(chosen)

    def _pin(self, session: str, upstream_id: str, now: float) -> None:
        if len(self._pins) >= MAX_PINS:
            self._pins = {k: v for k, v in self._pins.items() if v[1] > now}
            if len(self._pins) >= MAX_PINS:
                self._pins.clear()
        self._pins[session] = (upstream_id, now + self.sticky_ttl_s)

    def repin(self, session: str | None, state: UpstreamState) -> None:
        """After a failover, the session follows the upstream that answered."""
        if session and self.sticky:
            self._pin(session, state.id, self.clock())

    def _begin(self, s: UpstreamState) -> UpstreamState:
        if s.cooldown_until and not s.cooling(self.clock()):
            s.half_open = True
        return s

    # -- accounting -------------------------------------------------------------------------------
    def acquire(self, s: UpstreamState) -> None:
        s.in_flight += 1
        s.requests += 1
        if self.strategy_name == "least_connections":
            self.shared.in_flight(s.id, 1)

    def release(self, s: UpstreamState) -> None:
        s.in_flight -= 1
        if self.strategy_name == "least_connections":
            self.shared.in_flight(s.id, -1)

    def succeeded(self, s: UpstreamState, latency_ms: float) -> None:
        s.latencies_ms.append(latency_ms)
        if s.consecutive_failures or s.cooldown_until:
            self.shared.recovered(s.id)
        s.consecutive_failures = 0
        s.cooldown_until = 0.0
        s.next_cooldown_s = FIRST_COOLDOWN_S
        s.half_open = False
        s.last_error = None

    def failed(self, s: UpstreamState, reason: str, retry_after_s: float | None = None) -> None:
        """Count a failure that the upstream is to blame for; cool it down when it is due."""
        now = self.clock()
        s.errors += 1
        s.consecutive_failures += 1
        s.last_error = reason
        if retry_after_s is not None and retry_after_s > 0:
            s.cooldown_until = max(s.cooldown_until, now + min(retry_after_s, MAX_COOLDOWN_S))
        elif s.half_open or s.consecutive_failures >= self.unhealthy_threshold:
            s.cooldown_until = now + s.next_cooldown_s
            s.next_cooldown_s = min(s.next_cooldown_s * 2, MAX_COOLDOWN_S)
        s.half_open = False
        if s.cooling(now):
            self.shared.cooldown(s.id, s.cooldown_until - now, reason)

    def abandoned(self, s: UpstreamState) -> None:
        """The attempt ended for a reason that says nothing of the upstream (client left, 4xx)."""
        s.half_open = False

    def probe_result(self, s: UpstreamState, ok: bool, reason: str | None,
                     valid_s: float = 90.0) -> None:
        """An active probe's verdict; shared instances trust it for ``valid_s``."""
        if ok == s.probe_down or not ok:
            self.shared.probe(s.id, ok, reason, valid_s)
        s.probe_down = not ok
        s.probe_reason = reason
        if ok and s.cooling(self.clock()):
            # A successful probe ends a cooldown early: the upstream answers again.
            s.cooldown_until = 0.0
            s.next_cooldown_s = FIRST_COOLDOWN_S
            s.consecutive_failures = 0

    def has_enabled(self) -> bool:
        return any(s.config.enabled for s in self.states)

    def out_of_budget(self, model: str | None) -> bool:
        """Every enabled upstream that serves ``model`` is out of its budget (and there is one)."""
        serving = [s for s in self.states if s.config.enabled and s.serves(model)]
        return bool(serving) and all(s.budget_reason is not None for s in serving)

    def snapshot(self) -> list[dict]:
        now = self.clock()
        return [s.snapshot(now) for s in self.states]
