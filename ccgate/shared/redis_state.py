"""State several gateway instances share through Redis: limit counters and balancing.

Every operation is one Lua script (one round trip, atomic). Every Redis failure fails open: the
caller gets the answer a single instance would give on its own, the error is logged once, and
``healthy`` turns False until Redis answers again (``/health`` then says ``degraded``).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Sequence

import gevent
import redis

from .link import RedisLink

log = logging.getLogger("ccgate.redis")

LEASE_TTL_S = 60  # a crashed instance's concurrency slots come back after this at the latest
LEASE_RENEW_S = 20  # leases of requests still running are renewed this often
UPKEEP_S = 2.0  # how often releases that failed are retried

RPM = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + 60 - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], 61)
return false
"""

ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[2])
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# KEYS: rr position, wrr scores, lc counts, pin ("" = no session)
# ARGV: strategy, prefix, pin ttl ms, then id, index, weight for each candidate
PICK = """
local strategy, prefix, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local all, usable = {}, {}
for i = 4, #ARGV, 3 do
  local c = {id = ARGV[i], index = tonumber(ARGV[i + 1]), weight = tonumber(ARGV[i + 2])}
  table.insert(all, c)
  if redis.call('EXISTS', prefix .. 'cooldown:' .. c.id) == 0 and
     redis.call('EXISTS', prefix .. 'down:' .. c.id) == 0 then
    table.insert(usable, c)
  end
end
if #usable == 0 then usable = all end
if KEYS[4] ~= '' then
  local pinned = redis.call('GET', KEYS[4])
  for _, c in ipairs(usable) do
    if c.id == pinned then
      redis.call('PEXPIRE', KEYS[4], ttl)
      return c.id
    end
  end
end
local set = {}
for _, c in ipairs(usable) do if c.weight > 0 then table.insert(set, c) end end
if #set == 0 then
  set = usable
  for _, c in ipairs(set) do c.weight = 1 end
end
local function rotate(cands)
  local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
  local chosen = cands[1]
  for _, c in ipairs(cands) do
    if c.index > last then chosen = c break end
  end
  redis.call('SET', KEYS[1], chosen.index)
  return chosen
end
local chosen
if strategy == 'weighted_round_robin' then
  local total, best, best_score = 0, nil, nil
  for _, c in ipairs(set) do
    local score = redis.call('HINCRBY', KEYS[2], c.id, c.weight)
    total = total + c.weight
    if best == nil or score > best_score then best, best_score = c, score end
  end
  redis.call('HINCRBY', KEYS[2], best.id, -total)
  chosen = best
elseif strategy == 'least_connections' then
  local fewest, tied = nil, {}
  for _, c in ipairs(set) do
    c.load = tonumber(redis.call('HGET', KEYS[3], c.id) or '0')
    if fewest == nil or c.load < fewest then fewest = c.load end
  end
  local heaviest = 0
  for _, c in ipairs(set) do
    if c.load == fewest and c.weight > heaviest then heaviest = c.weight end
  end
  for _, c in ipairs(set) do
    if c.load == fewest and c.weight == heaviest then table.insert(tied, c) end
  end
  chosen = rotate(tied)
elseif strategy == 'random' then
  local total = 0
  for _, c in ipairs(set) do total = total + c.weight end
  local r = math.random() * total
  chosen = set[#set]
  for _, c in ipairs(set) do
    r = r - c.weight
    if r < 0 then chosen = c break end
  end
else
  chosen = rotate(set)
end
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], chosen.id, 'PX', ttl) end
return chosen.id
"""


class RedisState:
    """Shared counters and balancing for every instance using the same Redis and prefix.

    Concurrency slots are leases of ``LEASE_TTL_S`` that an upkeep greenlet (owned here) renews
    while their requests run, so an instance that dies gives its slots back within a minute.
    A release that fails (Redis down) is retried by the same greenlet until it goes through.
    """

    def __init__(self, link: RedisLink | str, prefix: str):
        self.link = RedisLink(link) if isinstance(link, str) else link
        self.redis = self.link.redis
        self.prefix = prefix
        self.instance = f"{os.uname().nodename}:{os.getpid()}:{os.urandom(3).hex()}"
        self._rpm = self.redis.register_script(RPM)
        self._acquire = self.redis.register_script(ACQUIRE)
        self._pick = self.redis.register_script(PICK)
        self._serial = 0
        self._leases: dict[str, str] = {}  # lease -> tenant, for requests in flight
        self._unreleased: dict[str, str] = {}  # lease -> tenant, releases that failed
        self._upkeep = gevent.spawn(self._upkeep_loop)

    @property
    def healthy(self) -> bool:
        return self.link.healthy

    def _call(self, what: str, fn, default=None):
        """``fn()`` through the link; ``default`` when Redis fails (fail open)."""
        try:
            return self.link.call(what, fn)
        except redis.RedisError:
            return default

    # -- limit counters (the Limiter's ``counters``) ----------------------------------------------
    def rpm_admit(self, tenant_id: str, rpm: int, now: float) -> float | None:
        self._serial += 1
        wait = self._call("the rpm check", lambda: self._rpm(
            keys=[f"{self.prefix}rpm:{tenant_id}"],
            args=[now, rpm, f"{self.instance}:{self._serial}"]))
        return float(wait) if wait is not None else None

    def acquire(self, tenant_id: str, limit: int, now: float) -> object | None:
        if not limit:
            return "unlimited"
        self._serial += 1
        lease = f"{self.instance}:{self._serial}"
        got = self._call("the concurrency check", lambda: self._acquire(
            keys=[self._concurrency_key(tenant_id)], args=[now, limit, LEASE_TTL_S, lease]),
            default="unchecked")
        if got == "unchecked":
            return "unchecked"
        if not got:
            return None
        self._leases[lease] = tenant_id
        return lease

    def release(self, tenant_id: str, slot: object) -> None:
        if slot in ("unlimited", "unchecked"):
            return
        self._leases.pop(slot, None)
        try:
            self.link.call("a concurrency release",
                           lambda: self.redis.zrem(self._concurrency_key(tenant_id), slot))
        except redis.RedisError:
            self._unreleased[slot] = tenant_id  # retried by the upkeep greenlet

    def _concurrency_key(self, tenant_id: str) -> str:
        return f"{self.prefix}concurrency:{tenant_id}"

    def upkeep(self, now: float, renew: bool) -> None:
        """Retry failed releases; with ``renew``, push the expiry of running requests' leases."""
        if not self._unreleased and not (renew and self._leases):
            return
        unreleased, leases = dict(self._unreleased), dict(self._leases) if renew else {}

        def run():
            pipe = self.redis.pipeline(transaction=False)
            for lease, tenant in unreleased.items():
                pipe.zrem(self._concurrency_key(tenant), lease)
            for lease, tenant in leases.items():
                pipe.zadd(self._concurrency_key(tenant), {lease: now + LEASE_TTL_S}, xx=True)
                pipe.expire(self._concurrency_key(tenant), LEASE_TTL_S)
            pipe.execute()

        try:
            self.link.call("lease upkeep", run)
        except redis.RedisError:
            return
        for lease in unreleased:
            self._unreleased.pop(lease, None)

    def _upkeep_loop(self) -> None:
        last_renew = time.monotonic()
        while True:
            gevent.sleep(UPKEEP_S)
            renew = time.monotonic() - last_renew >= LEASE_RENEW_S
            try:
                self.upkeep(time.time(), renew)
            except Exception:
                log.exception("concurrency lease upkeep failed; retrying")
            if renew:
                last_renew = time.monotonic()

    # -- balancing (the Pool's ``shared``) ----------------------------------------------------------
    def pick(self, strategy: str, candidates: Sequence, session: str | None,
             sticky_ttl_s: float) -> str | None:
        """The shared choice among ``candidates`` (objects with id, index, weight), or None when
        Redis cannot be asked (the pool then chooses locally)."""
        args: list = [strategy, self.prefix, int(sticky_ttl_s * 1000)]
        for c in candidates:
            args += [c.id, c.index, c.weight]
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
        self._upkeep.kill(block=False)
        self.link.close()
