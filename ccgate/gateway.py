"""The running gateway's state: config, tenants, upstream pool and forwarder, built from a Config."""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo
from typing import Iterator


from .ops import metrics
from .config.load import Config
from .config.settings import SPEND_WINDOWS
from .core.client_ip import in_networks
from .core.errors import GatewayError
from .ops.logs import stop_logging
from .proxy import Forwarder, ProxyRequest, Relay
from .config.watcher import ConfigWatcher
from .resources.owners import OwnerFile, Owned, OwnerStore
from .shared.ledger import FileLedger
from .shared.local import LocalState, SharedState
from .shared.private_dir import private_dir
from .tenants import Call, Tenant, TenantRegistry
from .core.throttle import FailureThrottle
from .upstreams.health import HealthChecker
from .upstreams.pool import Pool
from .usage import open_store
from .usage.batch_meter import BatchResultsMeter
from .usage.limits import Admission, LimitExceeded, Limiter, RecordingUnavailable, usd
from .usage.meter import Meter, MeteringDeps
from .usage.pricing import PriceBook
from .alerts.watchdog import Watchdog

log = logging.getLogger("ccgate")
SPEND_LIMITS = frozenset(SPEND_WINDOWS)
RESULTS_KEPT_S = 29 * 86400  # Anthropic keeps a batch's results 29 days after its creation


def _refusal(tenant: Tenant, e: LimitExceeded) -> GatewayError:
    metrics.LIMIT_REJECTIONS.labels(tenant.id, e.limit).inc()
    if e.limit in SPEND_LIMITS:
        # Retrying cannot help before the reset: x-should-retry stops the official SDKs'
        # and Claude Code's automatic retries.
        return GatewayError(429, e.message, error_type="billing_error", code="insufficient_quota",
                            headers={"retry-after": str(e.retry_after_s), "x-should-retry": "false"})
    return GatewayError(429, e.message, headers={"retry-after": str(e.retry_after_s)})


class Gateway:
    """Everything a request needs, built once from the config and kept on ``app.extensions``."""

    def __init__(self, config: Config, data_dir):
        self.data_dir = data_dir
        self.started = time.time()
        self.clock = time.time  # "now" for limits and /usage; tests pin it
        # The spool and the spend ledger: another user of the machine must not touch them.
        self.private_dir = private_dir(data_dir, config.storage.spool_dir)
        self.store = open_store(config.storage, data_dir, private=self.private_dir,
                                tenants=frozenset(t.id for t in config.tenants))
        # One of several workers (``--workers``): limits are kept across them in the ledger.
        workers = int(os.environ.get("CCGATE_WORKERS") or 1) > 1
        self.shared: SharedState = LocalState(
            FileLedger(self.private_dir / "reservations") if self.private_dir else None, workers)
        self.owners: OwnerStore = OwnerFile(Path(data_dir) / "owners.jsonl")
        if config.storage.type == "redis":
            from .resources.owners_redis import OwnerRedis
            from .shared.redis_state import RedisState
            self.shared = RedisState(self.store.link, config.storage.prefix)
            self.owners = OwnerRedis(self.store.link, config.storage.prefix)
        self.limiter = Limiter(self.store, config.usage_timezone, counters=self.shared)
        self.admin_throttle = FailureThrottle(limit=10, window_s=300, block_s=300)
        self.key_throttle = FailureThrottle(limit=30, window_s=60, block_s=60)
        self.in_flight = 0  # HTTP requests being answered (graceful shutdown waits for 0)
        lb = config.load_balancer
        self.pool = Pool(config.upstreams, lb.strategy, unhealthy_threshold=lb.unhealthy_threshold,
                         sticky=lb.sticky, sticky_ttl_s=lb.sticky_ttl_s, shared=self.shared)
        self.forwarder = Forwarder(self.pool, failover=lb.failover, max_attempts=lb.max_attempts)
        self.watchdog = Watchdog(self, config.alerts)
        self.health: HealthChecker | None = None
        self.running = False
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
        self.metering = MeteringDeps(self.store, self.prices, self.limiter,
                                     ZoneInfo(config.usage_timezone),
                                     (metrics.observe_record, self.watchdog.record))
        lb = config.load_balancer
        self.pool.configure(config.upstreams, lb.strategy, unhealthy_threshold=lb.unhealthy_threshold,
                            sticky=lb.sticky, sticky_ttl_s=lb.sticky_ttl_s)
        self.forwarder.configure(failover=lb.failover, max_attempts=lb.max_attempts)
        self.watchdog.configure(config.alerts)
        if self.health is not None:
            self.health.stop()
        self.health = HealthChecker(self.pool, lb) if lb.health_check else None
        if self.running and self.health is not None:
            self.health.start()

    # -- one request ------------------------------------------------------------------------------
    def admit(self, tenant: Tenant, spend_limits: bool = True,
              reserve_usd: float = 0.0) -> Admission:
        """Count a request in against the tenant's limits, or raise GatewayError (429, 503)."""
        try:
            return self.limiter.admit(tenant.id, tenant.limits, self.clock(), spend=spend_limits,
                                      reserve_usd=reserve_usd)
        except LimitExceeded as e:
            raise _refusal(tenant, e) from None
        except RecordingUnavailable:
            raise GatewayError(503, "usage cannot be recorded right now, so requests with a "
                                    "spending limit are paused; try again in a minute (the "
                                    "operator sees why on /health)",
                               error_type="overloaded_error", headers={"retry-after": "30"}) from None

    def batch_estimate(self, tenant: Tenant, requests: list, body_bytes: int) -> float:
        """A new batch's worst case at the batch price (each request's share of the body as
        input, all of its ``max_tokens`` as output). With a spend limit, it must fit what is
        left beside the worst cases of the tenant's batches whose results were not yet
        downloaded (their cost is billed then), or 429: a batch may never run a tenant past its
        limit by more than what already ran."""
        share = body_bytes // max(1, len(requests))
        estimate = sum(self.prices.estimate(r["params"]["model"], share,
                                            r["params"].get("max_tokens"), r["params"],
                                            batch=True) for r in requests)
        estimate *= tenant.config.billing_multiplier
        if tenant.limits.has_spend_limit:
            now = self.clock()
            pending = sum(float(o.notes.get("estimateUSD", 0))
                          for o in self.owners.owned_by("batches", tenant.id)
                          if not o.notes.get("resultsDone") and now - o.created < RESULTS_KEPT_S)
            what = (f"this batch ({len(requests)} requests)" if not pending else
                    f"this batch ({len(requests)} requests) with the batches whose results were "
                    f"not downloaded yet ({usd(pending)})")
            try:
                self.limiter.check_fits(tenant.id, tenant.limits, now, pending + estimate, what)
            except LimitExceeded as e:
                raise _refusal(tenant, e) from None
        return estimate

    @contextmanager
    def admitted(self, tenant: Tenant) -> Iterator[Admission]:
        """A free request the gateway answers itself (model lists): rpm and concurrency only."""
        admission = self.admit(tenant, spend_limits=False)
        try:
            yield admission
        finally:
            self.limiter.release(admission)

    def forward(self, call: Call, req: ProxyRequest, reserve: float = 0.0,
                batch: Owned | None = None) -> tuple[Relay, Meter | BatchResultsMeter]:
        """Admit the request against the tenant's limits, forward it, meter what comes back.

        Every tenant request passes here, whatever its path; nothing is sent upstream when a limit
        refuses it. ``call.spend_limits`` False (free endpoints: ``count_tokens``, model lists)
        checks only rpm and concurrency. ``call.record`` False writes a usage line only if the
        response turns out to be a generated message. The forwarder ends the meter, whatever
        happens (its ``finish`` runs exactly once). ``reserve``: the worst case to hold when the
        request names no model (a new batch); ``batch``: the batch whose results this is.
        """
        tenant = call.tenant
        if call.spend_limits and req.model and tenant.limits.has_spend_limit:
            doc = req.body_json or {}
            reserve = self.prices.estimate(req.model, len(req.body), doc.get("max_tokens"),
                                           doc) * tenant.config.billing_multiplier
        admission = self.admit(tenant, call.spend_limits, reserve)
        if batch is None:
            meter = Meter(call, self.metering, admission, req)
        else:
            def progress(lines: int, whole: bool) -> None:
                self.owners.note("batches", batch.id, {"resultsBilled": lines, "resultsDone":
                                                       whole or batch.notes.get("resultsDone", False)})
            meter = BatchResultsMeter(call, self.metering, admission, batch.id,
                                      int(batch.notes.get("resultsBilled", 0)), progress)
        return self.forwarder.forward(req, meter), meter

    def address_cap(self, address: str) -> int:
        """``server.maxConnectionsPerIP`` for a client address; none for a trusted proxy (the
        clients behind it share its address, and are counted there by address)."""
        config = self.config
        if in_networks(address, config.trusted_proxies):
            return 0
        return config.max_connections_per_ip

    # -- state for /health ------------------------------------------------------------------------
    def storage_problem(self) -> str | None:
        """Why usage recording is degraded right now, if it is (for /health)."""
        return self.store.problem()

    def storage_warning(self) -> str | None:
        """Something the operator should fix that is not failing yet (Redis without persistence)."""
        return self.store.warning()

    def start(self) -> None:
        """Start the background loops, each a ``Periodic`` its owner stops in ``close``: the
        config watcher, health checks, the store's spool retries, Redis lease upkeep, the
        watchdog (budgets, alerts, the daily summary)."""
        self.running = True
        self.watcher.start()
        if metrics.flusher is not None:
            metrics.flusher.start()
        self.store.start()
        self.shared.start()
        if self.health is not None:
            self.health.start()
        self.watchdog.start()

    def close(self) -> None:
        self.running = False
        self.watcher.stop()
        if metrics.flusher is not None:
            metrics.flusher.stop()
        self.watchdog.stop()
        if self.health is not None:
            self.health.stop()
        self.forwarder.close()
        self.store.close()
        self.shared.close()
        stop_logging()
