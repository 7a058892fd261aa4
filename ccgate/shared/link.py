"""One Redis connection and its health, shared by the usage store and the shared limit/balancing
state, so that both agree on whether Redis is there.

After a failure, calls are skipped for a back-off (1 s, doubling to 5 s while Redis keeps
failing) and fail at once: a frozen Redis costs one socket timeout per back-off, not one per call
(callers fail open). The first call after the back-off tries Redis again.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

import redis

log = logging.getLogger("ccgate.redis")

SOCKET_TIMEOUT_S = 2.0
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 5.0
PERSISTENCE_CHECK_S = 60.0

T = TypeVar("T")


class RedisSkipped(redis.ConnectionError):
    """Redis failed recently: not asked again until the back-off ends."""


class RedisLink:
    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic):
        self.redis = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S,
                                          socket_connect_timeout=SOCKET_TIMEOUT_S,
                                          health_check_interval=30)
        self.clock = clock
        self.healthy = True
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._backoff = BACKOFF_FIRST_S
        self._persistence: tuple[float, str | None] = (-PERSISTENCE_CHECK_S, None)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` against Redis; ``redis.RedisError`` (``RedisSkipped`` during the back-off)."""
        if not self.healthy and self.clock() < self._retry_at:
            raise RedisSkipped(self.last_error)
        try:
            result = fn()
        except redis.RedisError as e:
            self._failed(what, e)
            raise
        if not self.healthy:
            log.warning("redis is reachable again: shared state and usage resume")
        self.healthy, self.last_error, self._backoff = True, None, BACKOFF_FIRST_S
        return result

    def _failed(self, what: str, error: Exception) -> None:
        if self.healthy:
            log.error("redis unreachable (%s) during %s: failing open, usage spooled locally",
                      type(error).__name__, what)
        else:
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
        self.healthy = False
        self.last_error = f"redis unreachable ({type(error).__name__})"
        self._retry_at = self.clock() + self._backoff

    def persistence_warning(self) -> str | None:
        """A warning when Redis keeps nothing across a restart (checked at most once a minute)."""
        checked, warning = self._persistence
        if self.clock() - checked < PERSISTENCE_CHECK_S:
            return warning
        warning = None
        try:
            aof = self.call("a persistence check", lambda: self.redis.config_get("appendonly"))
            save = self.call("a persistence check", lambda: self.redis.config_get("save"))
            if aof.get("appendonly") == "no" and not save.get("save"):
                warning = ("redis has no persistence (appendonly no, no save points): a Redis "
                           "restart resets every tenant's spend; set 'appendonly yes'")
        except redis.RedisError:
            pass  # CONFIG may be disabled (managed Redis), or Redis is down: nothing to say
        self._persistence = (self.clock(), warning)
        return warning

    def close(self) -> None:
        self.redis.close()
