"""The running gateway's state: config, tenants, upstream pool and forwarder, built from a Config."""
from __future__ import annotations

import logging
import time

import gevent

from .config import Config
from .logs import stop_logging
from .proxy import Forwarder
from .reload import ConfigWatcher
from .tenants import TenantRegistry
from .throttle import FailureThrottle
from .upstreams.health import HealthChecker
from .upstreams.pool import Pool
from .usage.limits import Limiter
from .usage.pricing import PriceBook
from .usage import open_store

log = logging.getLogger("ccgate")
SPOOL_RETRY_S = 2.0


class Gateway:
    """Everything a request needs, built once from the config and kept on ``app.extensions``."""

    def __init__(self, config: Config, data_dir):
        self.data_dir = data_dir
        self.started = time.time()
        self.clock = time.time  # "now" for limits and /usage; tests pin it
        self.shared = None
        self.store = open_store(config.storage, data_dir)
        if config.storage.type == "redis":
            from .redis_state import RedisState
            self.shared = RedisState(self.store.link, config.storage.prefix)
        self.limiter = Limiter(self.store, config.usage_timezone, counters=self.shared)
        self.admin_throttle = FailureThrottle(limit=10, window_s=300, block_s=300)
        self.key_throttle = FailureThrottle(limit=30, window_s=60, block_s=60)
        self.in_flight = 0  # HTTP requests being answered (graceful shutdown waits for 0)
        lb = config.load_balancer
        self.pool = Pool(config.upstreams, lb.strategy, unhealthy_threshold=lb.unhealthy_threshold,
                         sticky=lb.sticky, sticky_ttl_s=lb.sticky_ttl_s)
        self.pool.shared = self.shared
        self.forwarder = Forwarder(self.pool, failover=lb.failover, max_attempts=lb.max_attempts)
        self.health: HealthChecker | None = None
        self.running = False
        self._spool_retry: gevent.Greenlet | None = None
        self.apply(config)
        self.watcher = ConfigWatcher(config.config_dir, self.apply)

    def apply(self, config: Config) -> None:
        """Take a new config (start-up or hot reload) without dropping in-flight requests.

        Upstream health, counters and keep-alive connections survive for unchanged upstream ids;
        usage, limits' windows and login lock-outs survive entirely. ``server.host``/``port``
        and ``admin.path`` only change with a restart.
        """
        self.config = config
        self.tenants = TenantRegistry(config.tenants)
        self.prices = PriceBook(config.pricing)
        self.limiter.set_timezone(config.usage_timezone)
        lb = config.load_balancer
        self.pool.configure(config.upstreams, lb.strategy, unhealthy_threshold=lb.unhealthy_threshold,
                            sticky=lb.sticky, sticky_ttl_s=lb.sticky_ttl_s)
        self.forwarder.configure(failover=lb.failover, max_attempts=lb.max_attempts)
        if self.health is not None:
            self.health.stop()
        self.health = HealthChecker(self.pool, lb) if lb.health_check else None
        if self.running and self.health is not None:
            self.health.start()

    def storage_problem(self) -> str | None:
        """Why usage recording is degraded right now, if it is (for /health)."""
        return self.store.problem()

    def storage_warning(self) -> str | None:
        """Something the operator should fix that is not failing yet (Redis without persistence)."""
        return self.store.link.persistence_warning() if self.shared is not None else None

    def _retry_spooled(self) -> None:
        """Owner of the spool retries: write records the data disk refused, once it has room."""
        while self.running:
            gevent.sleep(SPOOL_RETRY_S)
            try:
                if self.store.spool.pending:
                    self.store.retry_spooled()
            except Exception:
                log.exception("retrying spooled usage records failed; retrying later")

    def start(self) -> None:
        """Start the background greenlets (config watcher, health checks, spool retries)."""
        self.running = True
        self.watcher.start()
        if getattr(self.store, "spool", None) is not None:
            self._spool_retry = gevent.spawn(self._retry_spooled)
        if self.health is not None:
            self.health.start()

    def close(self) -> None:
        self.running = False
        if self._spool_retry is not None:
            self._spool_retry.kill()
        self.watcher.stop()
        if self.health is not None:
            self.health.stop()
        self.forwarder.close()
        self.store.close()
        if self.shared is not None:
            self.shared.close()
        stop_logging()
