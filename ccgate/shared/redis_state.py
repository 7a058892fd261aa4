"""State several gateway instances share through Redis: limit counters and balancing.

Every operation is one Lua script (one round trip, atomic). Every Redis failure fails open: the
caller gets the answer a single instance would give on its own, the error is logged once, and
``healthy`` turns False until Redis answers again (``/health`` then says ``degraded``).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Callable, Sequence

import redis

from ..core.periodic import Periodic
from .link import RedisLink
from .redis_scripts import ACQUIRE, PICK, RESERVE, RPM, UNRESERVE

log = logging.getLogger("ccgate.redis")

LEASE_TTL_S = 60  # a crashed instance's concurrency slots come back after this at the latest
LEASE_RENEW_S = 20  # leases of requests still running are renewed this often
UPKEEP_S = 2.0  # how often releases that failed are retried
RECENT_S = 10.0  # a released lease keeps its real cost this long, for admissions still deciding
UNCHECKED = "unchecked"  # what a lease is when Redis could not be asked (nothing to release)


class RedisState:
    """Shared counters and balancing for every instance using the same Redis and prefix.

    Concurrency slots and spend reservations are leases of ``LEASE_TTL_S`` that an upkeep
    greenlet (owned here) renews while their requests run, so an instance that dies gives them
    back within a minute.
    A release that fails (Redis down) is retried by the same greenlet until it goes through.
    """

    def __init__(self, link: RedisLink | str, prefix: str):
        self.link = RedisLink(link) if isinstance(link, str) else link
        self.redis = self.link.redis
        self.prefix = prefix
        self.instance = f"{os.uname().nodename}:{os.getpid()}:{os.urandom(3).hex()}"
        self._rpm = self.redis.register_script(RPM)
        self._acquire = self.redis.register_script(ACQUIRE)
        self._reserve = self.redis.register_script(RESERVE)
        self._unreserve = self.redis.register_script(UNRESERVE)
        self._pick = self.redis.register_script(PICK)
        self._serial = 0
        # lease -> (tenant, kind), kind "concurrency" or "reserve": for requests in flight, and
        # for releases that failed (retried by the upkeep greenlet)
        self._leases: dict[str, tuple[str, str]] = {}
        self._unreleased: dict[str, tuple[str, str]] = {}
        self._last_renew = time.monotonic()
        self._upkeep = Periodic("redis lease upkeep", UPKEEP_S, self._upkeep_tick)

    @property
    def healthy(self) -> bool:
        return self.link.healthy

    def _call(self, what: str, fn, default=None):
        """``fn()`` through the link; ``default`` when Redis fails (fail open)."""
        try:
            return self.link.call(what, fn)
        except redis.RedisError:
            return default

    def _new_lease(self) -> str:
        self._serial += 1
        return f"{self.instance}:{self._serial}"

    # -- limit counters (the Limiter's ``counters``) ----------------------------------------------
    def rpm_admit(self, tenant_id: str, rpm: int, now: float) -> float | None:
        wait = self._call("the rpm check", lambda: self._rpm(
            keys=[f"{self.prefix}rpm:{tenant_id}"], args=[now, rpm, self._new_lease()]))
        return float(wait) if wait is not None else None

    def acquire(self, tenant_id: str, limit: int, now: float) -> object | None:
        if not limit:
            return "unlimited"
        lease = self._new_lease()
        got = self._call("the concurrency check", lambda: self._acquire(
            keys=[self._key("concurrency", tenant_id)], args=[now, limit, LEASE_TTL_S, lease]),
            default=UNCHECKED)
        if got == UNCHECKED:
            return UNCHECKED
        if not got:
            return None
        self._leases[lease] = (tenant_id, "concurrency")
        return lease

    def release(self, tenant_id: str, slot: object) -> None:
        if slot not in ("unlimited", UNCHECKED):
            self._drop(slot, tenant_id, "concurrency")

    def reserve(self, tenant_id: str, amount: float, room: Callable[[], float],
                now: float) -> tuple[object, float | None]:
        """As ``LocalState.reserve``, atomic across every instance sharing this Redis: the spend
        epoch is read before ``room()``, and releases after it still count (``spend_rule``)."""
        epoch = int(self._call("a spend epoch", lambda: self.redis.get(
            self._key("spendepoch", tenant_id))) or 0)
        room = room()
        lease = self._new_lease()
        held = self._call("a spend reservation", lambda: self._reserve(
            keys=[self._key("reserve", tenant_id), self._key("reserved", tenant_id)],
            args=[now, repr(room), repr(amount), lease, LEASE_TTL_S, epoch]), default=UNCHECKED)
        if held == UNCHECKED:
            return UNCHECKED, None
        if held is not None:
            return None, float(held)
        self._leases[lease] = (tenant_id, "reserve")
        return lease, None

    def unreserve(self, tenant_id: str, lease: object, spent: float, now: float) -> None:
        """A new spend epoch; the lease holds the real cost ``spent`` for ``RECENT_S``."""
        if lease in (None, UNCHECKED):
            return
        self._leases.pop(lease, None)
        keys = [self._key("reserve", tenant_id), self._key("reserved", tenant_id),
                self._key("spendepoch", tenant_id)]
        try:
            self.link.call("a lease release", lambda: self._unreserve(
                keys=keys, args=[lease, repr(max(spent, 0.0)), now + RECENT_S]))
        except redis.RedisError:
            self._unreleased[lease] = (tenant_id, "reserve")  # retried by the upkeep greenlet

    def claim(self, key: str, ttl_s: float) -> bool:
        """The first instance to claim ``key`` gets True; without Redis, every one does."""
        got = self._call("an alert claim", lambda: self.redis.set(
            f"{self.prefix}claim:{key}", self.instance, nx=True, px=int(ttl_s * 1000)),
            default=True)
        return bool(got)

    def _key(self, kind: str, tenant_id: str) -> str:
        return f"{self.prefix}{kind}:{tenant_id}"

    def _forget(self, pipe, lease: str, tenant_id: str, kind: str) -> None:
        pipe.zrem(self._key(kind, tenant_id), lease)
        if kind == "reserve":
            pipe.hdel(self._key("reserved", tenant_id), lease)

    def _drop(self, lease: str, tenant_id: str, kind: str) -> None:
        self._leases.pop(lease, None)

        def run():
            pipe = self.redis.pipeline(transaction=False)
            self._forget(pipe, lease, tenant_id, kind)
            pipe.execute()
        try:
            self.link.call("a lease release", run)
        except redis.RedisError:
            self._unreleased[lease] = (tenant_id, kind)  # retried by the upkeep greenlet

    def upkeep(self, now: float, renew: bool) -> None:
        """Retry failed releases; with ``renew``, push the expiry of running requests' leases."""
        if not self._unreleased and not (renew and self._leases):
            return
        unreleased, leases = dict(self._unreleased), dict(self._leases) if renew else {}

        def run():
            pipe = self.redis.pipeline(transaction=False)
            for lease, (tenant, kind) in unreleased.items():
                self._forget(pipe, lease, tenant, kind)
            for lease, (tenant, kind) in leases.items():
                pipe.zadd(self._key(kind, tenant), {lease: now + LEASE_TTL_S}, xx=True)
                pipe.expire(self._key(kind, tenant), LEASE_TTL_S)
                if kind == "reserve":
                    pipe.expire(self._key("reserved", tenant), LEASE_TTL_S)
            pipe.execute()

        try:
            self.link.call("lease upkeep", run)
        except redis.RedisError:
            return
        for lease in unreleased:
            self._unreleased.pop(lease, None)

    def _upkeep_tick(self) -> None:
        renew = time.monotonic() - self._last_renew >= LEASE_RENEW_S
        try:
            self.upkeep(time.time(), renew)
        finally:
            if renew:
                self._last_renew = time.monotonic()

    def start(self) -> None:
        self._upkeep.start()

    # -- balancing (the Pool's ``shared``) ----------------------------------------------------------
    def pick(self, strategy: str, candidates: Sequence, session: str | None,
             sticky_ttl_s: float) -> str | None:
        """The shared choice among ``candidates`` (objects with id, index, weight, priority), or
        None when Redis cannot be asked (the pool then chooses locally)."""
        args: list = [strategy, self.prefix, int(sticky_ttl_s * 1000)]
        for c in candidates:
            args += [c.id, c.index, c.weight, c.priority]
        keys = [f"{self.prefix}rr", f"{self.prefix}wrr", f"{self.prefix}lc",
                f"{self.prefix}pin:{session}" if session else ""]
        chosen = self._call("an upstream pick", lambda: self._pick(keys=keys, args=args))
        return chosen.decode() if isinstance(chosen, bytes) else chosen

    def in_flight(self, upstream_id: str, delta: int) -> None:
        self._call("an in-flight count", lambda: self.redis.hincrby(f"{self.prefix}lc", upstream_id, delta))

    def cooldown(self, upstream_id: str, seconds: float, reason: str) -> None:
        self._call("a cooldown", lambda: self.redis.set(
            f"{self.prefix}cooldown:{upstream_id}", reason, px=max(1, int(seconds * 1000))))

    def recovered(self, upstream_id: str) -> None:
        self._call("a recovery", lambda: self.redis.delete(f"{self.prefix}cooldown:{upstream_id}"))

    def probe(self, upstream_id: str, ok: bool, reason: str | None, valid_s: float) -> None:
        key = f"{self.prefix}down:{upstream_id}"
        if ok:
            self._call("a probe result", lambda: self.redis.delete(key))
        else:
            self._call("a probe result", lambda: self.redis.set(key, reason or "down",
                                                                px=int(valid_s * 1000)))

    def close(self) -> None:
        self._upkeep.stop()
        self.link.close()
