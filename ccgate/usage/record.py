"""One usage record: typed while the gateway builds it, the Node CCGate's JSON line on disk.

The field names are the record format's own (camelCase, Node-compatible), so existing data
directories and tools keep working; ``to_dict`` gives exactly today's line, optional fields only
when they apply.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def iso_utc(ts: float) -> str:
    """``2026-11-26T06:33:57.378Z``, the Node CCGate's timestamp form."""
    global _second
    second, ms = divmod(int(ts * 1000), 1000)
    if _second[0] != second:  # formatted once per second, not per record
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)))
    return f"{_second[1]}{ms:03d}Z"


OPTIONAL = ("cacheCreation1hTokens", "interrupted", "provisional", "attempts", "listCost",
            "clientIP")


@dataclass
class UsageRecord:
    requestId: str
    tenantId: str
    timestamp: str  # ISO 8601 UTC with milliseconds, the request's start
    model: str
    inputTokens: int = 0
    outputTokens: int = 0
    cacheCreationTokens: int = 0
    cacheReadTokens: int = 0
    totalTokens: int = 0
    inputCost: float = 0.0
    outputCost: float = 0.0
    cacheCreationCost: float = 0.0
    cacheReadCost: float = 0.0
    totalCost: float = 0.0  # what the tenant is billed: list cost × its billingMultiplier
    duration: int = 0  # ms
    statusCode: int = 0
    errorType: str | None = None
    upstream: str | None = None
    api: str = "anthropic"
    stream: bool = False
    requestedModel: str | None = None
    ttfbMs: float | None = None
    sessionId: str | None = None
    userAgent: str | None = None
    clientIP: str | None = None  # the client's address (behind trusted proxies, the real one)
    upstreamCost: float = 0.0  # what the upstream charges: list cost × its priceMultiplier
    cacheCreation1hTokens: int = 0  # the 1-hour part of cacheCreationTokens, when reported
    interrupted: str | None = None  # "client" or "upstream", for an answer cut short
    provisional: int = 0  # a long stream recorded as it goes: the revision, replaced later
    listCost: float | None = None  # the list-price cost, when the tenant's billing differs
    attempts: list | None = None  # the routing log: {"upstream", "status" or "error", "ms"} each

    def to_dict(self) -> dict:
        # Not dataclasses.asdict: it deep-copies every value, the costliest step of metering.
        return {name: value for name in FIELDS for value in (getattr(self, name),)
                if value or name not in OPTIONAL}

    def to_json(self) -> str:
        return record_json(self.to_dict())


def record_json(record: dict) -> str:
    """A record as its line's JSON (one shared encoder: ``json.dumps`` builds one per call)."""
    return _ENCODER.encode(record)


FIELDS = tuple(f.name for f in fields(UsageRecord))
