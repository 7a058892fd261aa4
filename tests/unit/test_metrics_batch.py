"""Metrics counted in batches (``ops/metrics.py``): one update per bucket hit gives exactly what
``observe`` per value gives, bounds included."""
from prometheus_client import CollectorRegistry, Histogram

from ccgate.ops.metrics import _observe_all

BUCKETS = (0.1, 0.5, 1.0, 5.0)
VALUES = [0.0, 0.1, 0.1000001, 0.5, 0.7, 1.0, 4.99, 5.0, 5.01, 1e9, 0.05, 0.5]


def samples(registry: CollectorRegistry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for metric in registry.collect() for s in metric.samples
            if not s.name.endswith("_created")}


def test_batched_observations_equal_one_by_one():
    one, batch = CollectorRegistry(), CollectorRegistry()
    a = Histogram("d", "d", ["api"], buckets=BUCKETS, registry=one).labels("x")
    b = Histogram("d", "d", ["api"], buckets=BUCKETS, registry=batch).labels("x")
    for value in VALUES:
        a.observe(value)
    _observe_all(b, VALUES)
    assert samples(one) == samples(batch)
    assert samples(batch)[("d_bucket", (("api", "x"), ("le", "0.1")))] == 3  # 0, 0.05, 0.1
