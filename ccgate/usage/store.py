"""The usage store interface and the totals it answers with.

A usage record is one JSON object in the Node CCGate's format (``requestId, tenantId, timestamp,
model, inputTokens, …, totalCost, statusCode, errorType, upstream`` plus CCGate-Python's ``api,
stream, requestedModel, ttfbMs, sessionId``). Backends keep records append-only and answer totals
per tenant and day; the day of a record is its timestamp's date in ``usage.timezone``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Callable, Iterable, Protocol


def _int(value) -> int:
    return value if type(value) is int else 0  # not a bool (an int subclass), not a float


def _float(value) -> float:
    return float(value) if type(value) is float or type(value) is int else 0.0


def is_error(record: dict) -> bool:
    status = record.get("statusCode")
    return bool(record.get("errorType")) or (isinstance(status, int) and status >= 400)


def record_values(record: dict) -> tuple:
    """What a record adds to counters, each value checked (records on disk may be hand-edited)."""
    get = record.get
    return (is_error(record), _int(get("inputTokens")), _int(get("outputTokens")),
            _int(get("cacheCreationTokens")), _int(get("cacheReadTokens")),
            _int(get("totalTokens")), _float(get("totalCost")),
            _float(get("listCost", get("totalCost"))), _float(get("upstreamCost")))


@dataclass
class Counters:
    """Requests, errors, tokens and cost over some set of records."""
    requests: int = 0
    errors: int = 0
    inputTokens: int = 0
    outputTokens: int = 0
    cacheCreationTokens: int = 0
    cacheReadTokens: int = 0
    totalTokens: int = 0
    costUSD: float = 0.0  # what the tenants are billed (totalCost)
    listCostUSD: float = 0.0  # the same at list price (before a tenant's billingMultiplier)
    upstreamCostUSD: float = 0.0  # what the upstreams charge the operator (upstreamCost)

    def add_record(self, record: dict, sign: int = 1) -> None:
        """Count a record in (``sign=-1``: take it back out)."""
        self.add_values(record_values(record), sign)

    def add_values(self, values: tuple, sign: int = 1) -> None:
        """Count in one record's ``record_values`` (read once, counted in several totals)."""
        errors, inp, out, cache_creation, cache_read, total, cost, list_cost, upstream = values
        self.requests += sign
        self.errors += sign * errors
        self.inputTokens += sign * inp
        self.outputTokens += sign * out
        self.cacheCreationTokens += sign * cache_creation
        self.cacheReadTokens += sign * cache_read
        self.totalTokens += sign * total
        self.costUSD += sign * cost
        self.listCostUSD += sign * list_cost
        self.upstreamCostUSD += sign * upstream

    def merge(self, other: "Counters") -> None:
        for name in COUNTER_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self, operator: bool = True) -> dict:
        """The counters as JSON; ``operator=False`` for a tenant, who sees what it is billed,
        not list prices or what the upstreams charge."""
        out = {name: round(v, 6) if name in MONEY_FIELDS else v
               for name in COUNTER_FIELDS for v in (getattr(self, name),)
               if operator or name not in OPERATOR_FIELDS}
        return out


COUNTER_FIELDS = tuple(Counters.__dataclass_fields__)
MONEY_FIELDS = ("costUSD", "listCostUSD", "upstreamCostUSD")
OPERATOR_FIELDS = ("listCostUSD", "upstreamCostUSD")


def minute_of(record: dict) -> int | None:
    """The epoch minute a record's request started (its ``timestamp``), or None."""
    ts = record.get("timestamp")
    if not isinstance(ts, str) or len(ts) < 19:
        return None
    return _minute(ts[:16], ts[16:19])


@lru_cache(maxsize=4096)
def _minute(prefix: str, seconds: str) -> int | None:
    """Parsed once per distinct second (records of the same second share it), not per record."""
    try:
        return int(datetime.fromisoformat(prefix + seconds).replace(tzinfo=timezone.utc)
                   .timestamp()) // 60
    except ValueError:
        return None


def superseded(records: Iterable[dict]) -> set[int]:
    """Indexes of provisional records that a later record of the same request replaces."""
    last: dict[str, int] = {}
    out: set[int] = set()
    for i, record in enumerate(records):
        rid = record.get("requestId")
        if rid in last:
            out.add(last[rid])
        if record.get("provisional") and isinstance(rid, str):
            last[rid] = i
        else:
            last.pop(rid, None)
    return out


def latest(records: list[dict]) -> list[dict]:
    """``records`` without the provisional ones that a later record replaces."""
    gone = superseded(records)
    return [r for i, r in enumerate(records) if i not in gone] if gone else records


@dataclass
class DayTotals(Counters):
    """Counters for one tenant and day, also split by model and by upstream.

    A provisional record (a long stream recorded as it goes) counts until a later record of the
    same request arrives, which replaces it: each request is counted once.
    """
    by_model: dict[str, Counters] = field(default_factory=dict)
    by_upstream: dict[str, Counters] = field(default_factory=dict)
    provisional: dict[str, dict] = field(default_factory=dict, repr=False, compare=False)
    # Spend per minute of the day (epoch minute of each request's start): sliding windows.
    minutes: dict[int, float] = field(default_factory=dict, repr=False, compare=False)

    def add_record(self, record: dict, sign: int = 1) -> None:
        if self.provisional and sign > 0:
            earlier = self.provisional.pop(record.get("requestId"), None)
            if earlier is not None:
                self.add_record(earlier, -1)
        values = record_values(record)
        self.add_values(values, sign)
        model = record.get("model") if isinstance(record.get("model"), str) else "unknown"
        self.by_model.setdefault(model, Counters()).add_values(values, sign)
        if isinstance(record.get("upstream"), str):
            self.by_upstream.setdefault(record["upstream"], Counters()).add_values(values, sign)
        cost, minute = values[6], minute_of(record)
        if cost and minute is not None:
            self.minutes[minute] = self.minutes.get(minute, 0.0) + sign * cost
        if sign > 0 and record.get("provisional") and isinstance(record.get("requestId"), str):
            self.provisional[record["requestId"]] = record

    def merge(self, other: "DayTotals") -> None:
        Counters.merge(self, other)
        for model, counters in other.by_model.items():
            self.by_model.setdefault(model, Counters()).merge(counters)
        for upstream, counters in other.by_upstream.items():
            self.by_upstream.setdefault(upstream, Counters()).merge(counters)
        for minute, cost in other.minutes.items():
            self.minutes[minute] = self.minutes.get(minute, 0.0) + cost

    def as_dict(self, operator: bool = True) -> dict:
        out = Counters.as_dict(self, operator)
        out["byModel"] = {m: c.as_dict(operator) for m, c in sorted(self.by_model.items())}
        if operator:
            out["byUpstream"] = {u: c.as_dict() for u, c in sorted(self.by_upstream.items())}
        return out


class StoreUnavailable(Exception):
    """The store cannot be read right now (Redis down): limits fail open, reports answer 503."""


class UsageStore(Protocol):
    def append(self, record: dict, day: date) -> None:
        """Add one record to ``day``'s records of its tenant."""

    def day_totals(self, tenant_id: str, day: date) -> DayTotals:
        """Totals of one tenant's day, up to date with every process's appends."""

    def range_totals(self, tenant_id: str, first: date, last: date) -> list[tuple[date, DayTotals]]:
        """Per-day totals from ``first`` to ``last`` inclusive."""

    def month_cost(self, tenant_id: str, day: date) -> float:
        """Spend in ``day``'s month up to and including ``day``."""

    def recent(self, day: date, limit: int, tenant_id: str | None = None) -> list[dict]:
        """The newest records of ``day``, newest first."""

    def find(self, request_id: str, tenant_id: str, day: date, since: float | None,
             pause: Callable[[], None]) -> dict | None:
        """The final record of one request in one tenant's day, without reading the whole day
        (``since``: when the request arrived, when known; ``pause``: called between reads)."""

    def records(self, tenant_id: str, day: date) -> list[dict]:
        """Every record of one tenant's day, in order (export)."""

    def tenants(self) -> Iterable[str]:
        """Ids of the tenants that have any records."""

    @property
    def recording_ok(self) -> bool:
        """False while records could be kept only in memory (spend-limited tenants are refused)."""

    def problem(self) -> str | None:
        """What is wrong with recording usage right now, for /health."""

    def warning(self) -> str | None:
        """Something the operator should fix that is not failing yet (Redis without persistence)."""

    def start(self) -> None:
        """Start the store's own upkeep (retrying what it spooled); the gateway's start calls it."""

    def close(self) -> None:
        """Stop the upkeep; release files and connections."""
