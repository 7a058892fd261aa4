"""State several gateway instances share through Redis: limit counters and balancing.

Every operation is one Lua script (one round trip, atomic). Every Redis failure fails open: the
caller gets the answer a single instance would give on its own, the error is logged once, and
``healthy`` turns False until Redis answers again (``/health`` then says ``degraded``).
"""
from __future__ import annotations

import logging
import os
from typing import Sequence

import redis

log = logging.getLogger("ccgate.redis")

LEASE_TTL_S = 3600  # a crashed instance's concurrency slots come back after this at the latest

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
    """Shared counters and balancing for every instance using the same Redis and prefix."""

    def __init__(self, url: str, prefix: str):
        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2,
                                          health_check_interval=30)
        self.prefix = prefix
        self.instance = f"{os.uname().nodename}:{os.getpid()}:{os.urandom(3).hex()}"
        self._rpm = self.redis.register_script(RPM)
        self._acquire = self.redis.register_script(ACQUIRE)
        self._pick = self.redis.register_script(PICK)
        self.healthy = True
        self._serial = 0

    def _failed(self, what: str, error: Exception) -> None:
        if self.healthy:
            log.error("redis unreachable (%s) during %s: failing open on this instance",
                      type(error).__name__, what)
        self.healthy = False

    def _ok(self) -> None:
        if not self.healthy:
            log.warning("redis is reachable again: shared state resumes")
        self.healthy = True

    # -- limit counters (the Limiter's ``counters``) ----------------------------------------------
    def rpm_admit(self, tenant_id: str, rpm: int, now: float) -> float | None:
        self._serial += 1
        try:
            wait = self._rpm(keys=[f"{self.prefix}rpm:{tenant_id}"],
                             args=[now, rpm, f"{self.instance}:{self._serial}"])
        except redis.RedisError as e:
            self._failed("the rpm check", e)
            return None
        self._ok()
        return float(wait) if wait is not None else None

    def acquire(self, tenant_id: str, limit: int, now: float) -> object | None:
        if not limit:
            return "unlimited"
        self._serial += 1
        lease = f"{self.instance}:{self._serial}"
        try:
            got = self._acquire(keys=[f"{self.prefix}concurrency:{tenant_id}"],
                                args=[now, limit, LEASE_TTL_S, lease])
        except redis.RedisError as e:
            self._failed("the concurrency check", e)
            return "unchecked"
        self._ok()
        return lease if got else None

    def release(self, tenant_id: str, slot: object) -> None:
        if slot in ("unlimited", "unchecked"):
            return
        try:
            self.redis.zrem(f"{self.prefix}concurrency:{tenant_id}", slot)
        except redis.RedisError as e:
            self._failed("a concurrency release", e)  # the lease expires by itself

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
        try:
            chosen = self._pick(keys=keys, args=args)
        except redis.RedisError as e:
            self._failed("an upstream pick", e)
            return None
        self._ok()
        return chosen.decode() if isinstance(chosen, bytes) else chosen

    def _call(self, what: str, fn) -> None:
        try:
            fn()
        except redis.RedisError as e:
            self._failed(what, e)
            return
        self._ok()

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
        self.redis.close()
