"""The failover loop: pick an upstream, try it, judge the answer, fail over or relay it."""
from __future__ import annotations

import logging
import math
import time
from itertools import chain
from typing import Callable

from requests.adapters import HTTPAdapter

from ..core.errors import anthropic_error_body, upstream_failure_answer
from ..core.redact import StreamRedactor, replace_secrets
from ..upstreams.pool import Pool, UpstreamState
from .attempt import CommitGate, Failed, make_adapter, send_watched
from .headers import secrets_of, to_client
from .relay import RelayBody, UpstreamUse
from .types import GATEWAY_JSON, Answer, Exchange, Observer, Outcome, ProxyRequest, Relay
from .watch import ClientGone, ClientWatch

log = logging.getLogger("ccgate.proxy")
OUT_OF_BUDGET = ("this gateway is out of upstream budget: every upstream that could answer has "
                 "used up its spending limit or prepaid balance; the operator has been alerted. "
                 "Try again later")

HOLDER_GONE = ("the upstream that holds the file, skill or batch this request names is disabled, "
               "out of budget or no longer configured; ask the operator")


def tried_once(upstream_id: str, seconds: float, status: int | None = None,
               error: str | None = None) -> dict:
    """One entry of a request's routing log (the usage record's ``attempts``)."""
    entry: dict = {"upstream": upstream_id}
    if status is not None:
        entry["status"] = status
    if error is not None:
        entry["error"] = error
    entry["ms"] = round(seconds * 1000)
    return entry


Send = Callable[[UpstreamState, ProxyRequest, "ClientWatch | None"], Exchange]  # the wire


class Forwarder:
    """Sends requests to the pool's upstreams, with failover, and builds the relay.

    The wire is one function, ``send(up, req, watch) -> Exchange`` (raising ``Failed`` or
    ``ClientGone``): by default over one ``HTTPAdapter`` per upstream (its keep-alive pool); the
    tests script upstream answers through it, without sockets.
    """

    def __init__(self, pool: Pool, *, failover: bool = True, max_attempts: int = 3,
                 pool_size: int = 512, clock: Callable[[], float] = time.monotonic,
                 send: Send | None = None):
        self.pool = pool
        self.pool_size = pool_size
        self.clock = clock
        self.send = send or self._send_wire
        self._adapters: dict[str, HTTPAdapter] = {}
        self.configure(failover=failover, max_attempts=max_attempts)

    def _send_wire(self, up: UpstreamState, req: ProxyRequest,
                   watch: ClientWatch | None) -> Exchange:
        return send_watched(self._adapters[up.id], up, req, watch)

    def configure(self, *, failover: bool, max_attempts: int) -> None:
        """Follow the pool's upstream list: keep-alive sessions stay for the upstreams that stay."""
        self.failover = failover
        self.max_attempts = max_attempts
        for uid in [u for u in self._adapters if u not in self.pool.by_id]:
            self._adapters.pop(uid).close()
        for state in self.pool.states:
            if state.id not in self._adapters:
                self._adapters[state.id] = make_adapter(self.pool_size)

    def close(self) -> None:
        for adapter in self._adapters.values():
            adapter.close()

    def forward(self, req: ProxyRequest, observer: Observer | None = None) -> Relay:
        """Try upstreams until one gives an answer worth relaying; the client is watched throughout."""
        watch = (ClientWatch(req.client_socket, req.interim_ok)
                 if req.client_socket is not None else None)
        try:
            relay = self._attempts(req, observer, watch)
        except BaseException:
            # The one place a request can end without a relay: its observer still ends once.
            if watch is not None:
                watch.stop()
            if observer is not None:
                observer.finish(Outcome(status=500, upstream=None))
            raise
        return relay

    def _attempts(self, req: ProxyRequest, observer: Observer | None,
                  watch: ClientWatch | None) -> Relay:
        allowed = max(min(self.max_attempts if self.failover and not req.upstream else 1,
                          len(self.pool.states)), 1)
        tried: set[str] = set()
        failure: Failed | None = None
        last_up: UpstreamState | None = None
        started = self.clock()
        attempts: list[dict] = []
        for attempt in range(1, allowed + 1):
            up = self.pool.pick(req.model, req.session, tried, req.upstream)
            if up is None and attempt == 1 and self.pool.out_of_budget(req.model):
                return self._answer(503, anthropic_error_body("overloaded_error", OUT_OF_BUDGET),
                                    Outcome(status=503, upstream=None), observer, watch,
                                    [("retry-after", "600")])
            if up is None and attempt == 1 and req.upstream:
                return self._answer(503, anthropic_error_body("overloaded_error", HOLDER_GONE),
                                    Outcome(status=503, upstream=None), observer, watch,
                                    [("retry-after", "60")])
            if up is None and attempt == 1 and req.model and self.pool.has_enabled():
                body = anthropic_error_body("not_found_error",
                                            f"no upstream of this gateway serves model {req.model!r}")
                return self._answer(404, body, Outcome(status=404, upstream=None), observer,
                                    watch)
            if up is None:
                break
            tried.add(up.id)
            last_up = up
            self.pool.acquire(up)
            attempt_started = self.clock()
            try:
                return self._try(up, req, observer, watch, started, attempts,
                                 gate=attempt < allowed, failed_over=attempt > 1)
            except ClientGone:
                self.pool.release(up)
                self.pool.abandoned(up)
                attempts.append(tried_once(up.id, self.clock() - attempt_started,
                                           error="the client closed the request"))
                outcome = Outcome(status=499, upstream=up.id, client_gone=True, attempts=attempts)
                return self._answer(499, anthropic_error_body(
                    "api_error", "the client closed the request"), outcome, observer, watch)
            except Failed as f:
                failure = f
                self.pool.release(up)
                self.pool.failed(up, f.reason, f.retry_after)
                attempts.append(tried_once(up.id, self.clock() - attempt_started, f.status,
                                           f.reason))
                log.warning("upstream %s failed (attempt %d): %s", up.id, attempt, f.reason)
        return self._all_failed(failure, last_up, observer, watch, attempts)

    def _try(self, up: UpstreamState, req: ProxyRequest, observer: Observer | None,
             watch: ClientWatch | None, started: float, attempts: list[dict], *, gate: bool,
             failed_over: bool) -> Relay:
        """One attempt: send, hold a stream until it commits (when another attempt is left),
        and wrap the accepted answer in a relay. Raises Failed or ClientGone."""
        attempt_started = self.clock()
        exchange = self.send(up, req, watch)
        if watch is not None:
            watch.on_gone(exchange.interrupt)
        now = self.clock()
        status, headers = exchange.status, exchange.headers
        decoded = headers.get("content-encoding", "").lower() not in ("", "identity")
        answer = Answer.of(status, headers.get("content-type", ""), req.stream,
                           headers.get("content-length", ""), decoded)
        chunks = exchange.chunks(decoded)
        if answer.sse and gate and status == 200:
            chunks = chain(self._hold(exchange, chunks, watch), chunks)
        if status < 400:
            self.pool.succeeded(up, (now - attempt_started) * 1000)
        else:
            self.pool.abandoned(up)
        if failed_over:
            self.pool.repin(req.session, up)
        attempts.append(tried_once(up.id, now - attempt_started, status))
        outcome = Outcome(status=status, upstream=up.id, ttfb_ms=(now - started) * 1000,
                          attempts=attempts, price_multiplier=up.config.price_multiplier)
        secrets = secrets_of(up.config, error=status >= 400)
        body = RelayBody(UpstreamUse(self.pool, up, exchange), answer, chunks, watch, observer,
                         outcome, StreamRedactor(secrets))
        return Relay(status, to_client(headers, decoded, secrets), body, answer)

    def _hold(self, exchange: Exchange, chunks, watch: ClientWatch | None) -> list[bytes]:
        """A stream's first bytes, held by the commit gate; Failed (or ClientGone) when bad."""
        gate = CommitGate(self.clock())
        try:
            for chunk in chunks:
                if gate.feed(chunk, self.clock()):
                    break
        except Failed:
            exchange.end(False)
            raise
        except Exception as e:  # connection reset or timeout before the commit point
            exchange.end(False)
            if watch is not None and watch.gone:
                raise ClientGone() from None
            raise Failed(f"stream broke before the first content block "
                         f"({type(e).__name__})") from None
        return gate.held

    def _all_failed(self, failure: Failed | None, last_up: UpstreamState | None,
                    observer: Observer | None, watch: ClientWatch | None,
                    attempts: list[dict]) -> Relay:
        secrets = secrets_of(last_up.config, error=True) if last_up else ()
        status, body = upstream_failure_answer(failure.status if failure else None,
                                               failure.body if failure else b"",
                                               lambda text: replace_secrets(text, secrets))
        outcome = Outcome(status=status, upstream=last_up.id if last_up else None,
                          upstream_error=failure.reason if failure else "no upstream available",
                          attempts=attempts)
        extra = []
        if failure is not None and failure.retry_after:
            extra.append(("retry-after", str(math.ceil(failure.retry_after))))
        return self._answer(status, body, outcome, observer, watch, extra)

    @staticmethod
    def _answer(status: int, body: bytes, outcome: Outcome, observer: Observer | None,
                watch: ClientWatch | None, extra_headers: list[tuple[str, str]] = ()) -> Relay:
        """A JSON error the gateway answers itself after (or instead of) upstream attempts."""
        answer = Answer(status, GATEWAY_JSON, False, len(body))
        relay_body = RelayBody(None, answer, [body], watch, observer, outcome, StreamRedactor(()))
        return Relay(status, [("content-type", GATEWAY_JSON), *extra_headers], relay_body, answer)
