"""The usage store interface and the totals it answers with.

A usage record is one JSON object in the Node CCGate's format (``requestId, tenantId, timestamp,
model, inputTokens, …, totalCost, statusCode, errorType, upstream`` plus CCGate-Python's ``api,
stream, requestedModel, ttfbMs, sessionId``). Backends keep records append-only and answer totals
per tenant and day; the day of a record is its timestamp's date in ``usage.timezone``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Protocol


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def is_error(record: dict) -> bool:
    status = record.get("statusCode")
    return bool(record.get("errorType")) or (isinstance(status, int) and status >= 400)


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
    costUSD: float = 0.0

    def add_record(self, record: dict) -> None:
        self.requests += 1
        self.errors += is_error(record)
        self.inputTokens += _int(record.get("inputTokens"))
        self.outputTokens += _int(record.get("outputTokens"))
        self.cacheCreationTokens += _int(record.get("cacheCreationTokens"))
        self.cacheReadTokens += _int(record.get("cacheReadTokens"))
        self.totalTokens += _int(record.get("totalTokens"))
        self.costUSD += _float(record.get("totalCost"))

    def merge(self, other: "Counters") -> None:
        for name in COUNTER_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        out = {name: getattr(self, name) for name in COUNTER_FIELDS}
        out["costUSD"] = round(self.costUSD, 6)
        return out


COUNTER_FIELDS = tuple(Counters.__dataclass_fields__)


@dataclass
class DayTotals(Counters):
    """Counters for one tenant and day, also split by model."""
    by_model: dict[str, Counters] = field(default_factory=dict)

    def add_record(self, record: dict) -> None:
        super().add_record(record)
        model = record.get("model") if isinstance(record.get("model"), str) else "unknown"
        self.by_model.setdefault(model, Counters()).add_record(record)

    def merge(self, other: "DayTotals") -> None:
        Counters.merge(self, other)
        for model, counters in other.by_model.items():
            self.by_model.setdefault(model, Counters()).merge(counters)

    def as_dict(self) -> dict:
        out = Counters.as_dict(self)
        out["byModel"] = {m: c.as_dict() for m, c in sorted(self.by_model.items())}
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

    def records(self, tenant_id: str, day: date) -> list[dict]:
        """Every record of one tenant's day, in order (export)."""

    def tenants(self) -> Iterable[str]:
        """Ids of the tenants that have any records."""

    def close(self) -> None:
        """Release files and connections."""
