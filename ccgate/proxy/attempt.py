"""One try of one upstream: send, then judge the answer before any byte reaches the client.

The verdicts are pure (``judge_status``, ``CommitGate``): failover or not, commit the stream or
hold it, decided from the status, the headers and the first events alone, and tested without
sockets. The I/O of one try (``send``, ``iter_raw``) is below them.
"""
from __future__ import annotations

import socket
from typing import Iterator

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri
from urllib3.exceptions import ProtocolError
from urllib3.util.response import is_response_to_head

from ..core.errors import parse_anthropic_error, status_of_error_type
from ..core.json_object import with_model
from ..config.settings import CONNECT_TIMEOUT_S
from ..core.sse import SSEParser
from ..upstreams.pool import UpstreamState
from .chunked import Dechunker
from .headers import to_upstream
from .types import ProxyRequest
from .watch import ClientWatch, shut_down

RETRYABLE_STATUS = frozenset({401, 403, 429, 500, 502, 503, 504, 529})
COMMIT_BYTES = 2048
COMMIT_SECONDS = 10.0
MAX_ERROR_BODY = 64 * 1024
READ_SIZE = 64 * 1024


class Failed(Exception):
    """One attempt failed in a way another upstream may fix."""

    def __init__(self, reason: str, status: int | None = None, body: bytes = b"",
                 retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body
        self.retry_after = retry_after


# -- verdicts (pure) -------------------------------------------------------------------------------
def retry_after_seconds(headers) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def judge_status(status: int, headers, body: bytes) -> Failed | None:
    """The failure to fail over on for an answer's status, or None to relay it as it is."""
    if status not in RETRYABLE_STATUS:
        return None
    reason = f"HTTP {status}"
    if status in (401, 403):
        reason += " (credentials rejected)"
    return Failed(reason, status, body, retry_after_seconds(headers))


class CommitGate:
    """Holds a stream's first bytes until it is clearly good.

    ``feed`` returns True once the stream is committed: at the first ``content_block_start``,
    after ``COMMIT_BYTES``, or ``COMMIT_SECONDS`` after the gate opened. An ``event: error``
    before that raises ``Failed`` (fail over).
    """

    def __init__(self, started: float):
        self.started = started
        self.held: list[bytes] = []
        self._size = 0
        self._parser = SSEParser()

    def feed(self, chunk: bytes, now: float) -> bool:
        self.held.append(chunk)
        self._size += len(chunk)
        for event in self._parser.feed(chunk):
            if event.event == "error":
                data = event.data.encode()
                raise Failed("error event before the first content block",
                             status_of_error_type(parse_anthropic_error(data).type), data)
            if event.event == "content_block_start":
                return True
        return self._size >= COMMIT_BYTES or now - self.started >= COMMIT_SECONDS


# -- I/O -------------------------------------------------------------------------------------------
class UpstreamAdapter(HTTPAdapter):
    """requests' transport adapter, less the cookie jar it fills from each answer: nothing reads
    it (no Session sends cookies back, and ``headers.py`` drops ``Set-Cookie`` towards clients),
    and filling it cost about 10 µs of every request (py-spy, 2026-12-06)."""

    def build_response(self, req: requests.PreparedRequest, resp) -> requests.Response:
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url
        response.request = req
        response.connection = self
        return response


def make_adapter(pool_size: int) -> HTTPAdapter:
    return UpstreamAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)


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


def iter_raw(resp: requests.Response, decode: bool) -> Iterator[bytes]:
    """Body bytes as they arrive: each read takes what has been received, never waiting to fill
    a buffer; ``decode``: undo the answer's ``content-encoding``."""
    raw = resp.raw
    answer = getattr(raw, "_fp", None)  # http.client's response, which urllib3 reads from
    if raw.chunked and not decode and getattr(answer, "fp", None) is not None and not (
            is_response_to_head(answer)):
        return _dechunked(raw, answer)
    if raw.chunked and raw.supports_chunked_reads():
        return raw.read_chunked(READ_SIZE, decode_content=decode)  # urllib3's own generator
    return _read1_chunks(raw, decode)


def _dechunked(raw, answer) -> Iterator[bytes]:
    """A chunked answer's payload, one piece per read of the socket's buffer: events that
    arrived together leave together (urllib3's ``read_chunked`` takes one chunk per step, a
    dozen Python calls and a write to the client each)."""
    dechunker, fp = Dechunker(), answer.fp
    while not dechunker.done:
        # peek waits in the reader's own buffer; read1 alone would hold a new READ_SIZE buffer
        # for every stream waiting on its upstream (+14 kB resident each at 500 streams).
        fp.peek(1)
        data = fp.read1(READ_SIZE)
        if not data:
            raise ProtocolError("the upstream closed the connection before the last chunk")
        payload = dechunker.feed(data)
        if payload:
            yield payload
    if dechunker.extra:
        raw.close()  # bytes after the last chunk: a connection out of step is never reused
    else:
        answer.close()  # http.client's response is over: its connection can be reused


def _read1_chunks(raw, decode: bool) -> Iterator[bytes]:
    while True:
        data = raw.read1(READ_SIZE, decode_content=decode)
        if not data:
            return
        yield data


def send(adapter: HTTPAdapter, up: UpstreamState, req: ProxyRequest) -> requests.Response:
    """Send ``req`` to ``up``; the response, or ``Failed`` for what another upstream may fix."""
    cfg = up.config
    body = req.body
    mapped = cfg.model_map.get(req.model) if req.model and cfg.model_map else None
    if mapped and req.body_json is not None:
        body = with_model(body, mapped)
    url = cfg.url + req.path + (f"?{req.query}" if req.query else "")
    try:
        resp = adapter.send(prepare(req.method, url, to_upstream(req.headers, cfg), body),
                            stream=True, timeout=(CONNECT_TIMEOUT_S, cfg.read_timeout_s))
    except requests.exceptions.ConnectTimeout:
        raise Failed("connect timeout") from None
    except requests.exceptions.ReadTimeout:
        raise Failed("read timeout before response headers") from None
    except requests.exceptions.RequestException as e:
        raise Failed(f"connection failed ({type(e).__name__})") from None
    if resp.status_code in RETRYABLE_STATUS:
        try:
            error_body = resp.raw.read(MAX_ERROR_BODY, decode_content=True) or b""
        except Exception:  # the error body itself broke: the status is what matters
            error_body = b""
        resp.close()
        raise judge_status(resp.status_code, resp.headers, error_body)
    return resp


def send_watched(adapter: HTTPAdapter, up: UpstreamState, req: ProxyRequest,
                 watch: ClientWatch | None) -> "WireExchange":
    """``send``, given up (``ClientGone``) the moment the client hangs up: the watch interrupts
    the wait inside urllib3, which then drops that connection."""
    resp = send(adapter, up, req) if watch is None else watch.interruptible(send, adapter, up,
                                                                            req)
    return WireExchange(resp)


class WireExchange:
    """An upstream answer over requests and urllib3 (``proxy.types.Exchange``)."""

    __slots__ = ("resp", "status", "headers")

    def __init__(self, resp: requests.Response):
        self.resp = resp
        self.status = resp.status_code
        self.headers = resp.headers

    def chunks(self, decoded: bool) -> Iterator[bytes]:
        return iter_raw(self.resp, decoded)

    def interrupt(self) -> None:
        shut_down(upstream_socket(self.resp))

    def end(self, completed: bool) -> None:
        if completed:
            self.resp.raw.release_conn()  # the connection goes back to the keep-alive pool
        else:
            self.resp.close()


def upstream_socket(resp: requests.Response) -> socket.socket | None:
    """The socket under a streamed response, while it has one."""
    conn = getattr(resp.raw, "connection", None)
    return conn.sock if conn is not None else None
