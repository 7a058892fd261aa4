"""Prometheus metrics (``prometheus_client``).

Counters and histograms are process-wide; with several gunicorn workers set
``PROMETHEUS_MULTIPROC_DIR`` (the library's multiprocess mode) and ``/metrics`` sums the workers.
Per-upstream gauges are read from the pool at scrape time, so they show the answering process.
"""
from __future__ import annotations

import os
from bisect import bisect_left
from collections import Counter as Tally, defaultdict
from functools import lru_cache

import prometheus_client.values
from gevent.monkey import get_original
from prometheus_client import (CollectorRegistry, Counter, Histogram, generate_latest,
                               multiprocess)
from prometheus_client.core import GaugeMetricFamily

from ..core.periodic import Periodic
from ..upstreams.pool import Pool
from ..usage.record import UsageRecord

# Each value update takes the library's threading.Lock, which gevent's patching makes a greenlet
# lock (Python code on every inc). An update never yields, so the OS lock the library meant is
# enough: ten fewer Python-level lock round trips per request.
prometheus_client.values.Lock = get_original("threading", "Lock")

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

REQUESTS = Counter("ccgate_requests_total", "Metered requests", ["tenant", "model", "api", "status"])
DURATION = Histogram("ccgate_request_duration_seconds", "Whole request, streams included", ["api"],
                     buckets=BUCKETS)
TTFB = Histogram("ccgate_time_to_first_byte_seconds", "Until the upstream's response headers",
                 ["api"], buckets=BUCKETS)
TOKENS = Counter("ccgate_tokens_total", "Tokens by kind", ["tenant", "model", "kind"])
COST = Counter("ccgate_cost_usd_total", "Cost in USD", ["tenant", "model"])
LIMIT_REJECTIONS = Counter("ccgate_limit_rejections_total", "Requests refused by a tenant limit",
                           ["tenant", "limit"])
TOKEN_KINDS = ("input", "output", "cache_write", "cache_read")  # the record's four token counts


@lru_cache(maxsize=8192)
def _children(tenant: str, model: str, api: str, status: int) -> tuple:
    """The labelled children one kind of request updates, looked up once (``labels()``
    validates and locks on every call): requests, duration, ttfb, tokens by kind, cost."""
    return (REQUESTS.labels(tenant, model, api, str(status)), DURATION.labels(api),
            TTFB.labels(api), tuple(TOKENS.labels(tenant, model, kind) for kind in TOKEN_KINDS),
            COST.labels(tenant, model))


# Records wait here and are counted in batches: the library's updates (Python code and a lock
# each, eight per request) cost three times as much one request at a time, among everything
# else a request runs, as in a batch (bench/). A scrape counts what waits first, so /metrics is
# exact; with several workers (multiprocess mode) another worker may answer it, so each worker
# also counts what waits every FLUSH_EVERY_S (``flusher``, started and stopped by the gateway):
# a scrape then lags the other workers by at most that.
BATCH = 32
FLUSH_EVERY_S = 0.5
_MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
_waiting: list[UsageRecord] = []


def observe_record(record: UsageRecord) -> None:
    """Count one finished request from its usage record (within ``BATCH`` requests)."""
    _waiting.append(record)
    if len(_waiting) >= BATCH:
        count_waiting()


def count_waiting() -> None:
    """Count the records that wait (before a scrape): one update per labelled child per batch,
    not one per record. In multiprocess mode each update is a locked write to a shared file:
    eight per request cost 2.5 % of a worker's instructions (callgrind)."""
    records = _waiting[:]
    _waiting.clear()
    added: Tally = Tally()  # counter child -> amount
    observed: defaultdict = defaultdict(list)  # histogram child -> values
    for record in records:
        requests, duration, ttfb, tokens, cost = _children(
            record.tenantId, model_label(record.model), record.api, record.statusCode)
        added[requests] += 1
        observed[duration].append(record.duration / 1000)
        if record.ttfbMs is not None:
            observed[ttfb].append(record.ttfbMs / 1000)
        for child, count in zip(tokens, (record.inputTokens, record.outputTokens,
                                         record.cacheCreationTokens, record.cacheReadTokens)):
            if count:
                added[child] += count
        if record.totalCost:
            added[cost] += record.totalCost
    for child, amount in added.items():
        child.inc(amount)
    for child, values in observed.items():
        _observe_all(child, values)


def _observe_all(histogram, values: list[float]) -> None:
    """``histogram.observe(v)`` for every value, with one update per bucket it hits. The
    library's own rule (a value counts in the first bucket whose bound is at least it) on its
    fields (``_sum``, ``_buckets``, ``_upper_bounds``: the same from 0.20 to 0.26)."""
    bounds = histogram._upper_bounds
    hits = Tally(bisect_left(bounds, value) for value in values)
    histogram._sum.inc(sum(values))
    for i, count in hits.items():
        histogram._buckets[i].inc(count)


# At most this many model labels per process: an upstream that answers any model name, or a
# pricing.json "*" pattern, cannot grow /metrics (and each scrape) without bound. Later names
# are counted under "other"; the usage records keep every name.
MAX_MODEL_LABELS = 200
_model_labels: set[str] = set()


def model_label(model: str) -> str:
    if model in _model_labels:
        return model
    if len(_model_labels) >= MAX_MODEL_LABELS:
        return "other"
    _model_labels.add(model)
    return model


flusher = Periodic("metrics flush", FLUSH_EVERY_S, count_waiting) if _MULTIPROCESS else None


class PoolCollector:
    """Per-upstream gauges, read from one pool when scraped."""

    def __init__(self, pool: Pool):
        self.pool = pool

    def collect(self):
        snap = self.pool.snapshot()
        families = {
            "in_flight": GaugeMetricFamily("ccgate_upstream_in_flight", "Requests in flight", labels=["upstream"]),
            "healthy": GaugeMetricFamily("ccgate_upstream_healthy", "1 when usable", labels=["upstream"]),
            "cooldown": GaugeMetricFamily("ccgate_upstream_cooling_down", "1 while cooled down", labels=["upstream"]),
            "requests": GaugeMetricFamily("ccgate_upstream_requests", "Attempts since start", labels=["upstream"]),
            "errors": GaugeMetricFamily("ccgate_upstream_errors", "Failed attempts since start", labels=["upstream"]),
        }
        for u in snap:
            families["in_flight"].add_metric([u["id"]], u["inFlight"])
            families["healthy"].add_metric([u["id"]], 1 if u["healthy"] else 0)
            families["cooldown"].add_metric([u["id"]], 1 if u["cooldownUntil"] else 0)
            families["requests"].add_metric([u["id"]], u["requests"])
            families["errors"].add_metric([u["id"]], u["errors"])
        yield from families.values()


def exposition(pool: Pool) -> bytes:
    """The text exposition: process-wide (or all workers') metrics plus this pool's gauges."""
    count_waiting()
    if _MULTIPROCESS:
        shared = CollectorRegistry()
        multiprocess.MultiProcessCollector(shared)
        text = generate_latest(shared)
    else:
        from prometheus_client import REGISTRY
        text = generate_latest(REGISTRY)
    upstreams = CollectorRegistry()
    upstreams.register(PoolCollector(pool))
    return text + generate_latest(upstreams)
