"""Shared state when there is nothing to share: one instance's own counters, no shared balancing.

``LocalState`` and ``RedisState`` answer the same calls (the ``SharedState`` protocol): the
limiter's rpm window and concurrency slots, and the pool's balancing hooks. Locally the pool
balances by itself, so ``pick`` answers None and the marks are no-ops.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Callable, Protocol, Sequence

from .ledger import FileLedger, MemoryLedger


class SharedState(Protocol):
    healthy: bool

    def rpm_admit(self, tenant_id: str, rpm: int, now: float) -> float | None:
        """Count one request in the 60 s window; seconds to wait instead when it is full."""

    def acquire(self, tenant_id: str, limit: int, now: float) -> object | None:
        """A slot among ``limit`` in-flight requests (0 = unlimited), or None when all are taken."""

    def release(self, tenant_id: str, slot: object) -> None: ...

    def reserve(self, tenant_id: str, amount: float, room: Callable[[], float],
                now: float) -> tuple[object, float | None]:
        """Hold ``amount`` (a request's worst case) of spend unless ``spend_rule`` refuses it
        against ``room()`` (limit minus recorded spend, read when no release can slip between):
        ``(lease for unreserve, None)``, or ``(None, what is held)`` when refused."""

    def unreserve(self, tenant_id: str, lease: object, spent: float, now: float) -> None:
        """The request ended having cost ``spent``: its lease holds that briefly, then nothing."""

    def claim(self, key: str, ttl_s: float) -> bool:
        """True for the first claim of ``key`` within ``ttl_s`` (one alert, not one per instance)."""

    def pick(self, strategy: str, candidates: Sequence, session: str | None,
             sticky_ttl_s: float) -> str | None:
        """The shared choice among ``candidates``, or None: the pool then chooses itself."""

    def in_flight(self, upstream_id: str, delta: int) -> None: ...

    def cooldown(self, upstream_id: str, seconds: float, reason: str) -> None: ...

    def recovered(self, upstream_id: str) -> None: ...

    def probe(self, upstream_id: str, ok: bool, reason: str | None, valid_s: float) -> None: ...

    def start(self) -> None:
        """Start the upkeep of shared leases (Redis); the gateway's start calls it."""

    def close(self) -> None: ...


class LocalState:
    """rpm windows and in-flight counts kept in this process, spend reservations in ``ledger``
    (a ``FileLedger`` shares them with the other processes of the data dir); balancing stays in
    the pool. ``workers``: this process is one of several (``--workers``): the rpm window, the
    concurrency slots and alert claims are kept in the ``FileLedger`` too, so each limit holds
    across the workers."""

    healthy = True

    def __init__(self, ledger: MemoryLedger | FileLedger | None = None,
                 workers: bool = False) -> None:
        self._admitted: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self.ledger = ledger or MemoryLedger()
        self._claims: dict[str, float] = {}  # key -> expiry (monotonic)
        if workers and isinstance(self.ledger, FileLedger):
            self.rpm_admit = self.ledger.rpm_admit
            self.acquire = self.ledger.acquire
            self.release = self.ledger.release
            self.claim = self.ledger.claim

    def rpm_admit(self, tenant_id: str, rpm: int, now: float) -> float | None:
        """Count one request in the 60 s window; seconds to wait instead when it is full."""
        window = self._admitted.setdefault(tenant_id, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= rpm:
            return window[0] + 60 - now
        window.append(now)
        return None

    def acquire(self, tenant_id: str, limit: int, now: float) -> object | None:
        """A slot among ``limit`` in-flight requests (0 = unlimited), or None when all are taken."""
        in_flight = self._in_flight.get(tenant_id, 0)
        if limit and in_flight >= limit:
            return None
        self._in_flight[tenant_id] = in_flight + 1
        return tenant_id

    def release(self, tenant_id: str, slot: object) -> None:
        self._in_flight[tenant_id] -= 1

    def reserve(self, tenant_id: str, amount: float, room: Callable[[], float],
                now: float) -> tuple[object, float | None]:
        return self.ledger.reserve(tenant_id, amount, room, now)

    def unreserve(self, tenant_id: str, lease: object, spent: float, now: float) -> None:
        if lease is not None:
            self.ledger.unreserve(tenant_id, lease, spent, now)

    def claim(self, key: str, ttl_s: float) -> bool:
        now = time.monotonic()
        if self._claims.get(key, 0.0) > now:
            return False
        if len(self._claims) > 10_000:
            self._claims = {k: v for k, v in self._claims.items() if v > now}
        self._claims[key] = now + ttl_s
        return True

    def pick(self, strategy: str, candidates: Sequence, session: str | None,
             sticky_ttl_s: float) -> str | None:
        return None

    def in_flight(self, upstream_id: str, delta: int) -> None:
        pass

    def cooldown(self, upstream_id: str, seconds: float, reason: str) -> None:
        pass

    def recovered(self, upstream_id: str) -> None:
        pass

    def probe(self, upstream_id: str, ok: bool, reason: str | None, valid_s: float) -> None:
        pass

    def start(self) -> None:
        pass

    def close(self) -> None:
        self.ledger.close()
