"""Metering a Message Batch's results as they pass through: each succeeded result once, at the
batch price, against the tenant that created the batch.

Anthropic bills a batch when it runs, but its tokens only reach the tenant through
``GET /v1/messages/batches/<id>/results`` (JSON lines, one result each, the message with its
``usage``), which the gateway relays: each result line is billed as it arrives from the upstream,
before it reaches the client, so a download cut short is billed for what passed. The results of
an ended batch do not change, so the owner record keeps how many lines were billed
(``resultsBilled``): a later download passes those lines again without billing them, and bills
only what is new. Errored, canceled and expired results cost nothing and are not billed.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import orjson

from ..proxy.types import Answer, Outcome
from ..tenants import Call
from .extract import CHARS_PER_TOKEN, Usage
from .limits import Admission
from .meter import MAX_METERED_BODY, MAX_MODEL_NAME, MeteringDeps, local_day, price_record
from .record import UsageRecord, clip, iso_utc

log = logging.getLogger("ccgate.usage")

# progress(lines billed so far, whole download passed): kept in the batch's owner record
Progress = Callable[[int, bool], None]


class BatchResultsMeter:
    """The relay's observer for one download of a batch's results (see ``proxy.Observer``)."""

    def __init__(self, call: Call, deps: MeteringDeps, admission: Admission, batch_id: str,
                 billed: int, progress: Progress):
        self.call, self.deps, self.admission = call, deps, admission
        self.batch_id = batch_id
        self.billed = billed  # lines an earlier download billed: passed again, not billed
        self.progress = progress
        self.lines = 0  # whole result lines seen
        self.cost = 0.0  # what this download billed
        self.outcome: Outcome | None = None
        self.record = None  # one request, many records: the access log names none
        self._parts: list[bytes] = []  # the line being received, when it spans chunks
        self._part_size = 0
        self._settled = self._done = False

    def begin(self, outcome: Outcome, answer: Answer) -> None:
        self.outcome = outcome

    def feed(self, chunk: bytes) -> bool:
        if self.outcome.status != 200 or self._settled:
            return False
        end = chunk.rfind(b"\n")
        if end < 0:
            self._hold(chunk)
            return False
        first = chunk.find(b"\n")
        self._line(self._joined(chunk[:first]))
        for line in chunk[first + 1:end].split(b"\n") if end > first else ():
            self._line(line)
        self._hold(chunk[end + 1:])
        return False

    def _hold(self, part: bytes) -> None:
        """Keep the start of a line still arriving; past ``MAX_METERED_BODY`` only its size."""
        if part:
            self._part_size += len(part)
            if self._part_size <= MAX_METERED_BODY:
                self._parts.append(part)

    def _joined(self, head: bytes) -> bytes:
        """The line that ends with ``head``: the parts held before it, and ``head``."""
        if not self._part_size:
            return head
        size = self._part_size + len(head)
        line = b"".join(self._parts) + head
        self._parts, self._part_size = [], 0
        return line if size <= MAX_METERED_BODY else b"\0%d" % size  # too long to read

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        self.lines += 1
        if self.lines <= self.billed:
            return
        if line.startswith(b"\0"):  # a result too long to read: billed as all output
            log.warning("batch %s: a result of %s bytes could not be read; billed as output "
                        "tokens", self.batch_id, line[1:].decode())
            self._bill("?", "unknown", Usage(output_tokens=int(line[1:]) // CHARS_PER_TOKEN))
            return
        try:
            doc = orjson.loads(line)
            result = doc["result"]
            message = result["message"] if result.get("type") == "succeeded" else None
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("batch %s: result line %d is not a batch result; not billed",
                        self.batch_id, self.lines)
            return
        if not isinstance(message, dict):
            return  # errored, canceled or expired: not billed by Anthropic either
        usage = Usage()
        usage.update(message.get("usage"))
        model = message.get("model") if isinstance(message.get("model"), str) else "unknown"
        custom_id = doc.get("custom_id") if isinstance(doc.get("custom_id"), str) else "?"
        self._bill(custom_id, model, usage)

    def _bill(self, custom_id: str, model: str, usage: Usage) -> None:
        deps, call, now = self.deps, self.call, time.time()
        model = clip(model, MAX_MODEL_NAME)
        record = UsageRecord(
            requestId=clip(f"{self.batch_id}/{custom_id}", 200), tenantId=call.tenant.id,
            timestamp=iso_utc(now), model=model, inputTokens=usage.input_tokens,
            outputTokens=usage.output_tokens, cacheCreationTokens=usage.cache_creation_tokens,
            cacheReadTokens=usage.cache_read_tokens, totalTokens=usage.total_tokens,
            statusCode=200, upstream=self.outcome.upstream, api=call.surface,
            userAgent=clip(call.user_agent), clientIP=call.client_ip,
            cacheCreation1hTokens=usage.cache_creation_1h_tokens,
            webSearchRequests=usage.web_search_requests, inferenceGeo=usage.inference_geo,
            speed=usage.speed if usage.speed != "standard" else None, batch=True)
        price_record(record, deps.prices.cost(model, usage, batch=True),
                     call.tenant.config.billing_multiplier, self.outcome.price_multiplier)
        self.cost += record.totalCost
        try:
            deps.store.append(record.to_dict(), local_day(now, deps.tz))
            for observe in deps.observers:
                observe(record)
        except Exception:
            log.exception("batch %s: the usage of result %s could not be recorded",
                          self.batch_id, custom_id)

    def settle(self, outcome: Outcome, whole: bool = False) -> None:
        """The whole body arrived: its last line may lack a newline."""
        if self._settled:
            return
        self._settled = True
        if outcome.status == 200 and (whole or outcome.completed) and self._part_size:
            self._line(self._joined(b""))

    def finish(self, outcome: Outcome) -> None:
        if self._done:
            return
        self._done = True
        try:
            self.settle(outcome)
            if outcome.status == 200 and (self.lines > self.billed or outcome.completed):
                self.progress(max(self.lines, self.billed), outcome.completed)
        except Exception:
            log.exception("batch %s: how far its results were billed could not be kept",
                          self.batch_id)
        finally:
            self.deps.limiter.release(self.admission, self.cost)
