"""The running gateway's state: config, tenants, upstream pool and forwarder, built from a Config."""
from __future__ import annotations

import time

from .config import Config
from .proxy import Forwarder
from .tenants import TenantRegistry
from .throttle import FailureThrottle
from .upstreams.health import HealthChecker
from .upstreams.pool import Pool
from .usage.limits import Limiter
from .usage.pricing import PriceBook
from .usage.store_file import FileStore


class Gateway:
    """Everything a request needs, built once from the config and kept on ``app.extensions``."""

    def __init__(self, config: Config, data_dir):
        self.config = config
        self.data_dir = data_dir
        self.started = time.time()
        self.tenants = TenantRegistry(config.tenants)
        lb = config.load_balancer
        self.pool = Pool(config.upstreams, lb.strategy, unhealthy_threshold=lb.unhealthy_threshold,
                         sticky=lb.sticky, sticky_ttl_s=lb.sticky_ttl_s)
        self.forwarder = Forwarder(self.pool, failover=lb.failover, max_attempts=lb.max_attempts)
        self.health = HealthChecker(self.pool, lb) if lb.health_check else None
        self.store = FileStore(data_dir)
        self.prices = PriceBook(config.pricing)
        self.limiter = Limiter(self.store, config.usage_timezone)
        self.clock = time.time  # "now" for limits and /usage; tests pin it
        self.admin_throttle = FailureThrottle(limit=10, window_s=300, block_s=300)

    def start(self) -> None:
        """Start the background greenlets (health checks)."""
        if self.health is not None:
            self.health.start()

    def close(self) -> None:
        if self.health is not None:
            self.health.stop()
        self.forwarder.close()
        self.store.close()
