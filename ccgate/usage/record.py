"""One usage record: typed while the gateway builds it, the Node CCGate's JSON line on disk.

The field names are the record format's own (camelCase, Node-compatible), so existing data
directories and tools keep working; ``to_dict`` gives exactly today's line, optional fields only
when they apply.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..core.json_line import json_line

_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def _second_text(second: int) -> str:
    """``2026-11-26T06:33:57``, formatted once per second, not per record or line."""
    global _second
    if _second[0] != second:
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return _second[1]


def iso_utc(ts: float) -> str:
    """``2026-11-26T06:33:57.378Z``, the Node CCGate's timestamp form."""
    second, ms = divmod(int(ts * 1000), 1000)
    return f"{_second_text(second)}.{ms:03d}Z"


def utc_second(ts: float) -> str:
    """``2026-11-26T06:33:57Z`` (access-log lines)."""
    return _second_text(int(ts)) + "Z"


CLIPPED = "…[cut]"


def clip(text: str | None, most: int = 256) -> str | None:
    """A client- or upstream-supplied string as a record keeps it: at most ``most`` characters,
    marked when cut, so a record line stays small whatever the headers (a 30 KB user agent)."""
    if text is None or len(text) <= most:
        return text
    return text[:most - len(CLIPPED)] + CLIPPED


OPTIONAL = ("cacheCreation1hTokens", "interrupted", "provisional", "attempts", "listCost",
            "clientIP", "webSearchRequests", "webSearchCost", "inferenceGeo", "speed", "batch")


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
    webSearchRequests: int = 0  # server-side web searches, billed per search
    webSearchCost: float = 0.0  # their cost (in totalCost, not in the token costs)
    inferenceGeo: str | None = None  # where the answer says it ran, when it says so
    speed: str | None = None  # "fast" for fast mode (billed at a multiple), else absent
    batch: bool = False  # a Message Batch result, billed at the batch price when downloaded

    def to_dict(self) -> dict:
        # Not dataclasses.asdict: it deep-copies every value, the costliest step of metering.
        # The instance's own dict holds the fields in their declared order.
        out = self.__dict__.copy()
        for name in OPTIONAL:
            if not out[name]:
                del out[name]
        return out

    def to_json(self) -> str:
        return json_line(self.to_dict()).decode()



NUMBERS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens",
           "inputCost", "outputCost", "cacheCreationCost", "cacheReadCost", "totalCost",
           "upstreamCost", "cacheCreation1hTokens", "listCost", "duration", "webSearchRequests",
           "webSearchCost")


def record_problem(doc: object, tenants: frozenset[str] | None) -> str | None:
    """Why ``doc`` cannot be a usage record this gateway wrote (None when it can): records read
    back from a spool are checked before they count toward anyone's spend."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    for name in ("requestId", "tenantId", "timestamp", "model"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            return f"{name}: missing or not a string"
    if tenants is not None and doc["tenantId"] not in tenants:
        return f"tenantId {doc['tenantId'][:64]!r}: no such tenant"
    for name in NUMBERS:
        value = doc.get(name, 0)
        if value is None and name == "listCost":
            continue
        if type(value) not in (int, float) or not 0 <= value < 1e15:  # NaN and inf fail too
            return f"{name}: not a finite number of at least 0"
    return None
