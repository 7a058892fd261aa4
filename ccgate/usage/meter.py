"""Metering one request: watch the relayed bytes, then write one usage record when it ends."""
from __future__ import annotations

import logging
import math
import secrets
import time
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Callable
from zoneinfo import ZoneInfo

from ..core.errors import ANTHROPIC_TYPE_BY_STATUS, parse_anthropic_error
from ..core.sse import stream_complete
from ..proxy.types import Answer, Outcome, ProxyRequest, StreamCut
from .extract import CHARS_PER_TOKEN, StreamUsage, Usage, usage_from_body
from ..tenants import Call
from .limits import Admission, Limiter
from .pricing import Cost, PriceBook
from .record import UsageRecord, clip, iso_utc
from .store import UsageStore

log = logging.getLogger("ccgate.usage")
_monotonic = time.monotonic

MAX_METERED_BODY = 32 * 1024 * 1024
# Failed requests for models without a price are counted under this name: a client inventing
# model names must not grow metrics and reports without bound (the record keeps the name asked
# for in ``requestedModel``, cut to MAX_MODEL_NAME characters).
OTHER_MODEL = "other"
MAX_MODEL_NAME = 200
# A stream running longer than this is recorded as it goes: a provisional record (replaced by
# the next one and by the final one, counted once) every PROVISIONAL_EVERY_S, so a crash loses at
# most that much of one stream.
PROVISIONAL_EVERY_S = 60.0
CUT_CHECK_EVERY_CHARS = 2000  # cutStreams: live spend is checked every ~500 tokens streamed


_minute_day: tuple[int, object, date] | None = None  # (epoch minute, zone, its local date)


def local_day(ts: float, tz: ZoneInfo) -> date:
    """The date of ``ts`` in ``tz``, converted once per minute (no zone has changed its date
    within a minute since clocks had seconds in their offsets)."""
    global _minute_day
    minute = int(ts) // 60
    cached = _minute_day
    if cached is not None and cached[0] == minute and cached[1] is tz:
        return cached[2]
    day = datetime.fromtimestamp(ts, tz).date()
    _minute_day = (minute, tz, day)
    return day


def new_request_id() -> str:
    """16 hex digits: the second the request arrived, then 32 random bits (``find.id_second``:
    the admin's request detail goes straight to the right part of the right day)."""
    return f"{int(time.time()):08x}{secrets.token_hex(4)}"


def price_record(record: UsageRecord, cost: Cost, bill: float, price_multiplier: float) -> None:
    """Costs: the tenant's at list price × its billingMultiplier ``bill`` (``listCost`` keeps the
    list price when they differ), the operator's at list × the upstream's priceMultiplier."""
    record.inputCost, record.outputCost = round(cost.input * bill, 10), round(cost.output * bill, 10)
    record.cacheCreationCost = round(cost.cache_creation * bill, 10)
    record.cacheReadCost = round(cost.cache_read * bill, 10)
    record.webSearchCost = round(cost.web_search * bill, 10)
    record.totalCost = round(cost.total * bill, 10)
    if bill != 1:
        record.listCost = round(cost.total, 10)
    record.upstreamCost = round(cost.total * price_multiplier, 10)


@dataclass(frozen=True)
class MeteringDeps:
    """What every meter of one config shares; the gateway builds it per config."""
    store: UsageStore
    prices: PriceBook
    limiter: Limiter
    tz: ZoneInfo
    observers: tuple[Callable[[UsageRecord], None], ...] = ()


class Meter:
    """The relay's observer for one request (see ``proxy.Observer``).

    A record is written when ``always_record`` (the token-generating endpoints), and also for any
    other request whose response turns out to be a generated message (a body with ``usage``, or a
    stream with ``message_start``): metering goes by what came back, not by the request's path.

    ``finish`` runs exactly once, whatever ended the request, and never raises: a metering
    problem is logged, never turned into a client error.
    """

    def __init__(self, call: Call, deps: MeteringDeps, admission: Admission, req: ProxyRequest):
        self.store = deps.store
        self.prices = deps.prices
        self.limiter = deps.limiter
        self.tz = deps.tz
        self.observers = deps.observers
        self.call = call
        tenant = call.tenant
        self.always_record = call.record
        self.limits = tenant.limits
        self.billing_multiplier = tenant.config.billing_multiplier
        # cutStreams: live spend is next checked when the deltas carried this many characters
        self._check_at = CUT_CHECK_EVERY_CHARS if tenant.limits.cut_streams else math.inf
        self.admission = admission
        self.tenant_id = tenant.id
        self.model = req.model
        self.stream = req.stream
        self.session = req.session
        self.started = call.started
        self._provisional_at = _monotonic() + PROVISIONAL_EVERY_S  # the next provisional record
        self._revision = 0
        self.outcome = None
        self._sse: StreamUsage | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._done = False
        self.record: UsageRecord | None = None

    def begin(self, outcome: Outcome, answer: Answer) -> None:
        self.outcome = outcome
        if answer.sse:
            self._sse = StreamUsage()

    def feed(self, chunk: bytes) -> bool:
        """Watch relayed bytes; True once a stream's final ``message_delta`` (stop reason, final
        usage) has arrived: the answer is whole."""
        sse = self._sse
        if sse is not None:
            sse.feed(chunk)  # every relayed chunk: two comparisons, nothing more
            if _monotonic() >= self._provisional_at:
                self._save_provisional()
            if sse.delta_chars >= self._check_at:
                self._check_cut()
            return sse.stop_reason is not None
        if self._body_size < MAX_METERED_BODY:
            self._body.append(chunk)
            self._body_size += len(chunk)
        return False

    def _check_cut(self) -> None:
        """cutStreams: end the stream once recorded plus live spend passes a spend limit."""
        self._check_at = self._sse.delta_chars + CUT_CHECK_EVERY_CHARS
        so_far = replace(self._sse.usage, output_tokens=max(
            self._sse.usage.output_tokens, self._sse.delta_chars // CHARS_PER_TOKEN))
        model = self.model or so_far.model or "unknown"
        self.limiter.stream_cost_so_far(
            self.admission, self.prices.cost(model, so_far).total * self.billing_multiplier)
        reason = self.limiter.limit_passed(self.tenant_id, self.limits, time.time())
        if reason:
            raise StreamCut(reason)

    def _usage_and_error(self, outcome) -> tuple[Usage, str | None]:
        if self._sse is not None:
            self._sse.close()
            error = self._sse.error_type or ("api_error" if outcome.upstream_error else None)
            return self._sse.usage, error
        body = b"".join(self._body)
        if outcome.status >= 400:
            return Usage(), (parse_anthropic_error(body).type
                             or ANTHROPIC_TYPE_BY_STATUS.get(outcome.status, "api_error"))
        if self._body_size >= MAX_METERED_BODY:
            log.warning("request %s: response over %d bytes, usage not read", self.call.request_id,
                        MAX_METERED_BODY)
        return usage_from_body(body), "api_error" if outcome.upstream_error else None

    def _save_provisional(self) -> None:
        """Record the stream so far; the final record (or the next provisional one) replaces it."""
        self._provisional_at = _monotonic() + PROVISIONAL_EVERY_S
        self._revision += 1
        try:
            usage = self._sse.usage
            record = self._record(self.outcome, usage, None)
            record.interrupted, record.provisional = None, self._revision
            self.store.append(record.to_dict(), self._day())
        except Exception:
            log.exception("request %s: provisional usage could not be recorded", self.call.request_id)

    def _day(self):
        return local_day(self.started, self.tz)

    def settle(self, outcome, whole: bool = False) -> None:
        """Write the usage record now (once): the answer is whole (``whole``, or ``outcome``
        completed), its last bytes not yet sent."""
        if self.record is not None:
            return
        try:
            usage, error_type = self._usage_and_error(outcome)
            self.record = self._record(outcome, usage, error_type, whole)
            if self.always_record or usage.seen or self._revision:
                self.store.append(self.record.to_dict(), self._day())
                for observe in self.observers:
                    observe(self.record)
        except Exception:
            log.exception("request %s: usage could not be recorded", self.call.request_id)

    def finish(self, outcome) -> None:
        """The relay ended: the record (unless ``settle`` wrote it), then the limits' release."""
        if self._done:
            return
        self._done = True
        try:
            self.settle(outcome)
        finally:
            # After the record: its cost is never missing from both spend and reservations.
            self.limiter.release(self.admission,
                                 self.record.totalCost if self.record else 0.0)

    def _record(self, outcome, usage: Usage, error_type: str | None,
                whole: bool = False) -> UsageRecord:
        model = clip(self.model or usage.model or "unknown", MAX_MODEL_NAME)
        requested = self.call.requested_model
        if (outcome.status >= 400 or error_type) and not self.prices.is_priced(model):
            model = OTHER_MODEL
        record = UsageRecord(
            requestId=self.call.request_id, tenantId=self.tenant_id,
            timestamp=iso_utc(self.started),
            model=model, inputTokens=usage.input_tokens, outputTokens=usage.output_tokens,
            cacheCreationTokens=usage.cache_creation_tokens,
            cacheReadTokens=usage.cache_read_tokens, totalTokens=usage.total_tokens,
            duration=round((time.time() - self.started) * 1000), statusCode=outcome.status,
            errorType=clip(error_type, 64), upstream=outcome.upstream, api=self.call.surface,
            stream=self.stream, requestedModel=(requested[:MAX_MODEL_NAME]
                                                if isinstance(requested, str) else requested),
            ttfbMs=round(outcome.ttfb_ms, 1) if outcome.ttfb_ms is not None else None,
            sessionId=clip(self.session), userAgent=clip(self.call.user_agent),
            clientIP=self.call.client_ip,
            cacheCreation1hTokens=usage.cache_creation_1h_tokens,
            attempts=outcome.attempts or None, webSearchRequests=usage.web_search_requests,
            inferenceGeo=usage.inference_geo,
            speed=usage.speed if usage.speed != "standard" else None)
        if usage.total_tokens or usage.web_search_requests:
            price_record(record, self.prices.cost(model, usage), self.billing_multiplier,
                         outcome.price_multiplier)
        # A stream is whole by ``stream_complete`` alone (the OpenAI client is told the same),
        # however its connection ended; any other body when its last byte came.
        whole = (stream_complete(self._sse.stop_reason) if self._sse is not None
                 else whole or outcome.completed)
        if outcome.cut:
            record.interrupted = "limit"
        elif not whole and outcome.status < 400:
            record.interrupted = "client" if outcome.client_gone else "upstream"
        return record
