"""One forwarded request: upstream headers, attempts with failover, the stream commit gate, relay.

Flow of ``Forwarder.forward``: pick an upstream, send, and judge the answer *before any byte goes
to the client*. Connection errors, timeouts before headers, retryable statuses and (for streams)
an ``event: error`` before the first ``content_block_start`` fail over to the next upstream. Once
an answer is accepted, ``forward`` returns a ``Relay`` whose ``body`` generator passes bytes on
as they arrive; its ``finally`` closes the upstream response and reports the outcome, whether the
stream completed, the upstream broke or the client went away.
"""
from __future__ import annotations

import json
import logging
import math
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol

import gevent
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri

from .config import CONNECT_TIMEOUT_S, UpstreamConfig
from .errors import (ANTHROPIC_TYPE_BY_STATUS, STATUS_BY_ANTHROPIC_TYPE, anthropic_error_body,
                     anthropic_error_event)
from .client_watch import ClientWatch, shut_down
from .redact import StreamRedactor, replace_secrets
from .sse import EventTooLarge, SSEParser
from .upstreams.pool import Pool, UpstreamState

log = logging.getLogger("ccgate.proxy")

# Request headers never forwarded: hop-by-hop, the client's credentials and identity, and what
# the HTTP client recomputes.
DROP_REQUEST_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
    "accept-encoding", "x-api-key", "authorization", "cookie", "forwarded", "x-real-ip",
    "x-ccgate-session", "via", "cf-connecting-ip", "true-client-ip", "x-client-ip",
    "x-cluster-client-ip", "x-envoy-external-address", "x-original-forwarded-for",
})
DROP_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "set-cookie",
})
RETRYABLE_STATUS = frozenset({401, 403, 429, 500, 502, 503, 504, 529})
COMMIT_BYTES = 2048
COMMIT_SECONDS = 10.0
MAX_ERROR_BODY = 64 * 1024
READ_SIZE = 64 * 1024
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


def upstream_headers(client_headers: Iterable[tuple[str, str]], upstream: UpstreamConfig) -> dict:
    """Headers for the upstream: the client's, minus what must not pass, plus the upstream's key."""
    out = {}
    for name, value in client_headers:
        lower = name.lower()
        if lower in DROP_REQUEST_HEADERS or lower.startswith("x-forwarded-"):
            continue
        out[lower] = value
    out.setdefault("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
    out["accept-encoding"] = "identity"
    out.update(upstream.auth_headers())
    return out


def secrets_of(upstream: UpstreamConfig, error: bool) -> tuple[str, ...]:
    """What an upstream's answers must not show a tenant: its key and URL, and in errors its host.

    The host is left in successful bodies: a model may legitimately write ``api.anthropic.com``.
    """
    return (upstream.key, upstream.url) + ((upstream.host,) if error else ())


def client_headers(upstream_resp_headers, decoded: bool,
                   secrets: tuple[str, ...]) -> list[tuple[str, str]]:
    """Response headers for the client, cleaned of the upstream's secrets; length and encoding
    go when the body was decoded."""
    out = []
    for name, value in upstream_resp_headers.items():
        lower = name.lower()
        if lower in DROP_RESPONSE_HEADERS:
            continue
        if decoded and lower in ("content-encoding", "content-length"):
            continue
        out.append((name, replace_secrets(value, secrets)))
    return out


def iter_raw(resp: requests.Response) -> Iterator[bytes]:
    """Body bytes as they arrive: one chunk per read, never waiting to fill a buffer."""
    raw = resp.raw
    decode = bool(resp.headers.get("content-encoding", "identity").lower() not in ("", "identity"))
    if raw.chunked and raw.supports_chunked_reads():
        yield from raw.read_chunked(READ_SIZE, decode_content=decode)
        return
    while True:
        data = raw.read1(READ_SIZE, decode_content=decode)
        if not data:
            return
        yield data


def status_of_error_event(data: bytes) -> int:
    """The HTTP status matching an ``event: error`` payload's error type (500 when unknown)."""
    try:
        error_type = json.loads(data)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        return 500
    return STATUS_BY_ANTHROPIC_TYPE.get(error_type, 500)


def retry_after_seconds(headers) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Observer(Protocol):
    """Watches one relayed response (metering plugs in here)."""

    def begin(self, outcome: "Outcome", content_type: str) -> None:
        """The answer starts; ``outcome`` is filled in as it goes and final at ``finish``."""

    def feed(self, chunk: bytes) -> None: ...

    def finish(self, outcome: "Outcome") -> None: ...


@dataclass
class ProxyRequest:
    method: str
    path: str  # below the surface prefix, e.g. "/v1/messages"
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    model: str | None = None
    stream: bool = False
    session: str | None = None
    body_json: dict | None = None  # parsed body, needed only for modelMap
    client_socket: socket.socket | None = None
    interim_ok: bool = True  # an HTTP/1.1 client: the watch may probe it with "100 Continue"


@dataclass
class Outcome:
    """How a relayed request ended, for metering and logs."""
    status: int
    upstream: str | None
    completed: bool = False  # the upstream body was relayed to its end
    client_gone: bool = False
    upstream_error: str | None = None
    ttfb_ms: float | None = None


@dataclass
class Relay:
    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]


class _ClientGone(Exception):
    """The client hung up before its answer started."""


class _Failed(Exception):
    """One attempt failed in a way another upstream may fix."""

    def __init__(self, reason: str, status: int | None = None, body: bytes = b"",
                 retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body
        self.retry_after = retry_after


def _make_adapter(pool_size: int) -> HTTPAdapter:
    return HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)


def prepare(method: str, url: str, headers: dict, body: bytes) -> requests.PreparedRequest:
    """A PreparedRequest built directly, for ``HTTPAdapter.send``.

    ``Session.request`` would merge cookies, environment proxies, ~/.netrc credentials and hooks,
    none of which a gateway wants, at about 1 ms of CPU per request on a small VPS (measured in
    bench/RESULTS.md); the adapter does the HTTP with the same connection pooling.
    """
    prep = requests.PreparedRequest()
    prep.method = method
    prep.url = requote_uri(url)
    prep.headers = CaseInsensitiveDict(headers)
    prep.body = body or None
    if body or method in ("POST", "PUT", "PATCH"):
        prep.headers["content-length"] = str(len(body))
    prep.hooks = {"response": []}
    prep._cookies = None
    return prep


def final_error(failure: _Failed | None, upstream: UpstreamConfig | None) -> tuple[int, bytes]:
    """The client's answer when every attempt failed: the last status, Anthropic's error shape."""
    if failure is None or failure.status is None:
        return 503, anthropic_error_body("overloaded_error", "no upstream could be reached; "
                                         "try again shortly")
    if failure.status in (401, 403):
        # The upstream refused the gateway's own key: never the tenant's fault, so no 401 that
        # would make Claude Code ask its user to log in again.
        return 502, anthropic_error_body("api_error", f"the upstream rejected the gateway's "
                                         f"credentials (HTTP {failure.status}); tell the operator")
    error_type, message = None, f"upstream answered HTTP {failure.status}"
    try:
        doc = json.loads(failure.body)
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            error_type = err.get("type") if isinstance(err.get("type"), str) else None
            if isinstance(err.get("message"), str):
                message = err["message"]
    except ValueError:
        pass  # an HTML page from a proxy in front of the mirror: keep the generic message
    error_type = error_type or ANTHROPIC_TYPE_BY_STATUS.get(failure.status, "api_error")
    if upstream is not None:
        message = replace_secrets(message, secrets_of(upstream, error=True))
    return failure.status, anthropic_error_body(error_type, message)


class Forwarder:
    """Sends requests to the pool's upstreams, with failover, and builds the relay.

    One ``HTTPAdapter`` per upstream keeps its keep-alive connection pool.
    """

    def __init__(self, pool: Pool, *, failover: bool = True, max_attempts: int = 3,
                 pool_size: int = 512, clock: Callable[[], float] = time.monotonic):
        self.pool = pool
        self.pool_size = pool_size
        self.clock = clock
        self._adapters: dict[str, HTTPAdapter] = {}
        self.configure(failover=failover, max_attempts=max_attempts)

    def configure(self, *, failover: bool, max_attempts: int) -> None:
        """Follow the pool's upstream list: keep-alive sessions stay for the upstreams that stay."""
        self.failover = failover
        self.max_attempts = max_attempts
        for uid in [u for u in self._adapters if u not in self.pool.by_id]:
            self._adapters.pop(uid).close()
        for state in self.pool.states:
            if state.id not in self._adapters:
                self._adapters[state.id] = _make_adapter(self.pool_size)

    def close(self) -> None:
        for adapter in self._adapters.values():
            adapter.close()

    # -- one attempt ------------------------------------------------------------------------------
    def _send(self, up: UpstreamState, req: ProxyRequest) -> requests.Response:
        cfg = up.config
        body = req.body
        mapped = cfg.model_map.get(req.model) if req.model and cfg.model_map else None
        if mapped and req.body_json is not None:
            body = json.dumps({**req.body_json, "model": mapped}).encode()
        url = cfg.url + req.path + (f"?{req.query}" if req.query else "")
        try:
            resp = self._adapters[up.id].send(
                prepare(req.method, url, upstream_headers(req.headers, cfg), body), stream=True,
                timeout=(CONNECT_TIMEOUT_S, cfg.read_timeout_s))
        except requests.exceptions.ConnectTimeout:
            raise _Failed("connect timeout") from None
        except requests.exceptions.ReadTimeout:
            raise _Failed("read timeout before response headers") from None
        except requests.exceptions.RequestException as e:
            raise _Failed(f"connection failed ({type(e).__name__})") from None
        if resp.status_code in RETRYABLE_STATUS:
            try:
                body = resp.raw.read(MAX_ERROR_BODY, decode_content=True) or b""
            except Exception:  # the error body itself broke: the status is what matters
                body = b""
            resp.close()
            reason = f"HTTP {resp.status_code}"
            if resp.status_code in (401, 403):
                reason += " (credentials rejected)"
            raise _Failed(reason, resp.status_code, body, retry_after_seconds(resp.headers))
        return resp

    def _gate(self, resp: requests.Response, chunks: Iterator[bytes]) -> list[bytes]:
        """Hold a stream's first bytes until it is clearly good; raise _Failed if it is not.

        Committed at the first ``content_block_start``, after 2 KB, after 10 s (checked as each
        chunk arrives), or at the end of the stream. An ``event: error`` before that fails over.
        """
        parser = SSEParser()
        held: list[bytes] = []
        size = 0
        started = self.clock()
        for chunk in chunks:
            held.append(chunk)
            size += len(chunk)
            for event in parser.feed(chunk):
                if event.event == "error":
                    data = event.data.encode()
                    raise _Failed("error event before the first content block",
                                  status_of_error_event(data), data)
                if event.event == "content_block_start":
                    return held
            if size >= COMMIT_BYTES or self.clock() - started >= COMMIT_SECONDS:
                return held
        return held

    def _send_watched(self, up: UpstreamState, req: ProxyRequest,
                      watch: ClientWatch | None) -> requests.Response:
        """``_send``, given up (``_ClientGone``) the moment the client hangs up.

        The upstream call runs in a child greenlet so that waiting for it can end early; killing
        it raises GreenletExit inside urllib3, which then drops that connection.
        """
        if watch is None:
            return self._send(up, req)
        sender = gevent.spawn(_outcome_of, self._send, up, req)
        gevent.wait([sender, watch.gone], count=1)
        if not sender.ready():
            sender.kill()
            raise _ClientGone()
        resp, error = sender.value
        if error is not None:
            raise error
        return resp

    # -- the request ------------------------------------------------------------------------------
    def forward(self, req: ProxyRequest, observer: Observer | None = None) -> Relay:
        """Try upstreams until one gives an answer worth relaying; the client is watched throughout."""
        watch = (ClientWatch(req.client_socket, req.interim_ok)
                 if req.client_socket is not None else None)
        try:
            relay = self._attempts(req, observer, watch)
        except BaseException:
            if watch is not None:
                watch.stop()
            raise
        if watch is not None and not isinstance(relay.body, RelayBody):
            watch.stop()
        return relay

    def _attempts(self, req: ProxyRequest, observer: Observer | None,
                  watch: ClientWatch | None) -> Relay:
        attempts_allowed = min(self.max_attempts if self.failover else 1, len(self.pool.states))
        tried: set[str] = set()
        failure: _Failed | None = None
        last_up: UpstreamState | None = None
        started = self.clock()
        for attempt in range(1, max(attempts_allowed, 1) + 1):
            up = self.pool.pick(req.model, req.session, tried)
            if up is None and attempt == 1 and req.model and self.pool.has_enabled():
                body = anthropic_error_body("not_found_error",
                                            f"no upstream of this gateway serves model {req.model!r}")
                return self._answer(404, body, Outcome(status=404, upstream=None), observer)
            if up is None:
                break
            tried.add(up.id)
            last_up = up
            self.pool.acquire(up)
            attempt_started = self.clock()
            try:
                resp = self._send_watched(up, req, watch)
                if watch is not None:
                    watch.on_gone(lambda r=resp: shut_down(upstream_socket(r)))
                now = self.clock()
                ttfb_ms = (now - started) * 1000
                latency_ms = (now - attempt_started) * 1000
                chunks = iter_raw(resp)
                held: list[bytes] = []
                is_sse = resp.headers.get("content-type", "").startswith("text/event-stream")
                if is_sse and resp.status_code == 200 and attempt < attempts_allowed:
                    try:
                        held = self._gate(resp, chunks)
                    except _Failed:
                        resp.close()
                        raise
                    except Exception as e:  # connection reset or timeout before the commit point
                        resp.close()
                        if watch is not None and watch.gone.is_set():
                            raise _ClientGone() from None
                        raise _Failed(f"stream broke before the first content block "
                                      f"({type(e).__name__})") from None
            except _ClientGone:
                self.pool.release(up)
                self.pool.abandoned(up)
                outcome = Outcome(status=499, upstream=up.id, client_gone=True)
                return self._answer(499, anthropic_error_body(
                    "api_error", "the client closed the request"), outcome, observer)
            except _Failed as f:
                failure = f
                self.pool.release(up)
                self.pool.failed(up, f.reason, f.retry_after)
                log.warning("upstream %s failed (attempt %d): %s", up.id, attempt, f.reason)
                continue
            if resp.status_code < 400:
                self.pool.succeeded(up, latency_ms)
            else:
                self.pool.abandoned(up)
            if attempt > 1:
                self.pool.repin(req.session, up)
            decoded = "content-encoding" in resp.headers and \
                resp.headers["content-encoding"].lower() != "identity"
            outcome = Outcome(status=resp.status_code, upstream=up.id, ttfb_ms=ttfb_ms)
            if observer is not None:
                observer.begin(outcome, resp.headers.get("content-type", ""))
            secrets = secrets_of(up.config, error=resp.status_code >= 400)
            body = RelayBody(self, up, resp, held, chunks, is_sse, watch, observer, outcome,
                             StreamRedactor(secrets))
            return Relay(resp.status_code, client_headers(resp.headers, decoded, secrets), body)
        status, body = final_error(failure, last_up.config if last_up else None)
        outcome = Outcome(status=status, upstream=last_up.id if last_up else None,
                          upstream_error=failure.reason if failure else "no upstream available")
        extra = []
        if failure is not None and failure.retry_after:
            extra.append(("retry-after", str(math.ceil(failure.retry_after))))
        return self._answer(status, body, outcome, observer, extra)

    @staticmethod
    def _answer(status: int, body: bytes, outcome: Outcome, observer: Observer | None,
                extra_headers: list[tuple[str, str]] = ()) -> Relay:
        """A JSON error the gateway answers itself after (or instead of) upstream attempts."""
        if observer is not None:
            observer.begin(outcome, "application/json")
            observer.feed(body)
            observer.finish(outcome)
        return Relay(status, [("content-type", "application/json"), *extra_headers], [body])


class RelayBody:
    """The client's response body: upstream bytes as they arrive, then one cleanup.

    The bytes pass a ``StreamRedactor`` (the upstream's key and URL never reach the client) and
    the observer sees them as the upstream sent them. The cleanup (stop watching the client,
    return or drop the upstream connection, release the upstream's in-flight slot, tell the
    observer) runs exactly once: when the bytes run out, when the upstream breaks, when the client
    leaves mid-body, and also when the server closes the body without ever iterating it (a client
    gone before the first byte).
    """

    def __init__(self, forwarder: "Forwarder", up: UpstreamState, resp: requests.Response,
                 held: list[bytes], chunks: Iterator[bytes], is_sse: bool,
                 watch: ClientWatch | None, observer: Observer | None, outcome: Outcome,
                 redactor: StreamRedactor):
        self.forwarder = forwarder
        self.up = up
        self.resp = resp
        self.held = held
        self.chunks = chunks
        self.is_sse = is_sse
        self.observer = observer
        self.outcome = outcome
        self.redactor = redactor
        self._gen: Iterator[bytes] | None = None
        self._cleaned = False
        self._watch = watch
        if watch is not None:
            watch.responding = True
            watch.on_gone(self._client_left)

    def _client_left(self) -> None:
        # Shut the upstream socket down rather than close the response: the relay greenlet is
        # inside a read on it, which then returns at once; the relay's finally does the rest.
        self.outcome.client_gone = True
        shut_down(upstream_socket(self.resp))

    def __iter__(self) -> Iterator[bytes]:
        self._gen = self._generate()
        return self._gen

    def _upstream_chunks(self) -> Iterator[bytes]:
        yield from self.held
        self.held = []
        yield from self.chunks

    def _generate(self) -> Iterator[bytes]:
        observer, outcome, redactor = self.observer, self.outcome, self.redactor
        try:
            for chunk in self._upstream_chunks():
                if observer is not None:
                    observer.feed(chunk)
                chunk = redactor.feed(chunk)
                if chunk:
                    yield chunk
            tail = redactor.flush()
            if tail:
                yield tail
            outcome.completed = True
        except GeneratorExit:
            outcome.client_gone = True
            raise
        except Exception as e:
            if outcome.client_gone:
                return  # the watch shut the upstream socket because the client left
            if isinstance(e, EventTooLarge):
                outcome.upstream_error = f"upstream sent {e}"
                msg = f"the upstream sent {e}; the stream was ended"
            else:
                outcome.upstream_error = f"upstream broke mid-response ({type(e).__name__})"
                msg = ("upstream read timed out" if "Timeout" in type(e).__name__
                       else "upstream connection lost") + " mid-stream; the response is incomplete"
            log.warning("upstream %s: %s", self.up.id, outcome.upstream_error)
            self.forwarder.pool.failed(self.up, outcome.upstream_error)
            if self.is_sse:
                yield anthropic_error_event("api_error", msg)
        finally:
            self._cleanup()

    def close(self) -> None:
        """Called by the WSGI server when the response ends, for whatever reason."""
        if self._gen is not None:
            self._gen.close()  # runs the generator's own finally if it is suspended
        if not self._cleaned and not self.outcome.completed:
            self.outcome.client_gone = True  # closed before the body was through
        self._cleanup()

    def _cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        if self._watch is not None:
            self._watch.stop()
        if self.outcome.completed:
            self.resp.raw.release_conn()  # the connection goes back to the keep-alive pool
        else:
            self.resp.close()
        self.forwarder.pool.release(self.up)
        if self.observer is not None:
            self.observer.finish(self.outcome)


def upstream_socket(resp: requests.Response) -> socket.socket | None:
    """The socket under a streamed response, while it has one."""
    conn = getattr(resp.raw, "connection", None)
    return conn.sock if conn is not None else None


def _outcome_of(fn, *args):
    """``(result, None)`` or ``(None, exception)``: a child greenlet's answer, never its traceback
    on stderr (gevent prints exceptions that end a greenlet)."""
    try:
        return fn(*args), None
    except Exception as e:
        return None, e
