"""The gevent WSGI server the gateway runs in (``python app.py`` and the tests).

gevent's own parser is lenient in ways that matter behind a front proxy that frames requests
differently (request smuggling): it accepts ``Transfer-Encoding`` together with
``Content-Length``, folded header lines, bare CR or LF line ends and signed lengths. The
``Handler`` here reads the request head itself and refuses each of those with 400 and a closed
connection (RFC 9112 §2.2, §5.2, §6.3, §11.2) before anything reaches a view; gevent then gets
the lines it accepted (``RequestHead``) instead of parsing the head again. Nothing a client sent
is ever echoed into a log line.
"""
from __future__ import annotations

import json
import logging
import re
import socket

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer

from ..core.errors import anthropic_error_body
from ..openai.response import openai_error
from ..core.redact import mask_secretish

log = logging.getLogger("ccgate.server")

CLIENT_SOCKET_KEY = "ccgate.client_socket"
HEAD_CHECKED_KEY = "ccgate.head_checked"  # this server refused control characters in the head
HEAD_TIMEOUT_S = 15.0  # a new connection's request head, to its blank line
IDLE_KEEPALIVE_S = 75.0  # a kept-alive connection's next request head, waiting included
MAX_HEADER_LINE = 16 * 1024
MAX_HEADERS = 100

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP/1\.([01])\r\n")
# A field value: visible ASCII, obs-text, spaces and tabs; no CR, LF, NUL or other controls.
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_DIGITS = re.compile(r"[0-9]{1,18}")
# A well-formed header line as a whole: token, colon, a value without controls, CRLF.
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*\r\n")
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class _SlowClient(BaseException):
    """A client that takes too long to send a request head (slowloris): the connection closes."""


class BadFraming(ValueError):
    """A request head this server refuses (400, connection closed); the text names no input."""


def check_head_line(line: bytes) -> tuple[bytes, bytes]:
    """``(name, value)`` of one raw header line, or BadFraming."""
    if not line.endswith(b"\r\n") or b"\r" in line[:-2] or b"\n" in line[:-2]:
        raise BadFraming("header line not ended by CRLF, or a bare CR/LF inside it")
    if line[:1] in (b" ", b"\t"):
        raise BadFraming("folded header line (obs-fold)")
    name, sep, value = line[:-2].partition(b":")
    if not sep or not _TOKEN.fullmatch(name):
        raise BadFraming("malformed header name")
    value = value.strip(b" \t")
    if not _FIELD_VALUE.fullmatch(value):
        raise BadFraming("control character in a header value")
    return name, value


def check_framing(headers: list[tuple[bytes, bytes]]) -> None:
    """RFC 9112 §6.3: one unambiguous body length, or BadFraming."""
    te = [v for n, v in headers if n.lower() == b"transfer-encoding"]
    cl = [v for n, v in headers if n.lower() == b"content-length"]
    if te:
        if cl:
            raise BadFraming("both Transfer-Encoding and Content-Length")
        if len(te) > 1 or te[0].lower() != b"chunked":
            raise BadFraming("Transfer-Encoding other than a single 'chunked'")
    if cl:
        values = {v.strip() for item in cl for v in item.split(b",")}
        if len(values) != 1 or not _DIGITS.fullmatch(values.pop().decode("latin-1")):
            raise BadFraming("invalid or conflicting Content-Length")


class RequestHead:
    """A checked request head in the shape gevent's handler reads its ``headers`` (``get``,
    ``getheader``, ``typeheader``, ``headers``, ``status``), built from the lines the strict
    reader already split: gevent does not parse the head a second time."""

    status = ""  # gevent refuses a head whose parser left a status

    def __init__(self, lines: list[bytes], fields: list[tuple[bytes, bytes]]):
        self._lines = lines
        self._first: dict[str, str] = {}  # lower-case name -> its first value, as email.Message
        for name, value in fields:
            self._first.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name.lower(), default)

    getheader = get

    @property
    def typeheader(self) -> str | None:
        return self._first.get("content-type")

    @property
    def headers(self) -> list[str]:
        """Each header line as text, CRLF included (what gevent's environ builder splits)."""
        return [line.decode("latin-1") for line in self._lines]

    def __delitem__(self, name: str) -> None:
        # gevent deletes a Content-Length sent beside "Transfer-Encoding: chunked" and ignores
        # the KeyError when there is none; check_framing refuses that pair, so there never is.
        raise KeyError(name)


def check_host(headers: list[tuple[bytes, bytes]], http11: bool) -> None:
    """RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; HTTP/1.0 at most one."""
    hosts = sum(1 for n, _ in headers if n.lower() == b"host")
    if hosts > 1 or (http11 and hosts == 0):
        raise BadFraming("no Host header" if hosts == 0 else "more than one Host header")


def read_head(rfile, http11: bool = True) -> RequestHead:
    """The header lines of a request (up to and including the blank line), checked."""
    lines: list[bytes] = []
    headers: list[tuple[bytes, bytes]] = []
    while True:
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if not line:
            raise BadFraming("connection closed inside the request head")
        if len(line) > MAX_HEADER_LINE:
            raise BadFraming("header line too long")
        if line == b"\r\n":
            break
        ok = _HEADER_LINE.fullmatch(line)  # the usual case in one C call; else the exact reason
        headers.append(ok.group(1, 2) if ok else check_head_line(line))
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise BadFraming("too many header lines")
    check_framing(headers)
    check_host(headers, http11)
    return RequestHead(lines, headers)


class Handler(WSGIHandler):
    """Strict request heads, slowloris cut-off, the client socket in the environ, no Nagle.

    The client socket lets a relay notice a hang-up while the upstream is quiet. Nagle's algorithm
    is off: a response's last small write (the closing chunk) would otherwise wait for the
    client's delayed ACK, 40 ms per request, and SSE events would bunch.
    """

    def __init__(self, sock, address, server, rfile=None):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket): nothing to turn off
        self._requests_seen = 0
        # Made once per connection and restarted per request (a Timeout costs more to make
        # than to start): the whole-head budget, and the kept-alive idle wait.
        self._head_timer: gevent.Timeout | None = None
        self._idle_timer: gevent.Timeout | None = None
        self._timer: gevent.Timeout | None = None  # the one of the two running for this head
        self._over_capacity = False
        self._head: RequestHead | None = None
        super().__init__(sock, address, server, rfile)

    def handle(self):
        """One connection. Past ``server.max_connections`` open ones, its request is answered
        503 at once and the connection closed, rather than the process running out of
        descriptors (the head is read first, so the client sees the answer, not a reset)."""
        server = self.server
        counted = isinstance(server, GatewayServer)  # not a plain WSGIServer (test stand-ins)
        if counted:
            server.open_connections += 1
            self._over_capacity = 0 < server.max_connections < server.open_connections
        try:
            return super().handle()
        finally:
            if counted:
                server.open_connections -= 1
            for timer in (self._head_timer, self._idle_timer):
                if timer is not None:
                    timer.close()

    def handle_one_response(self):
        if self._over_capacity:
            self.close_connection = True
            self.application = _over_capacity
        return super().handle_one_response()

    def read_requestline(self):
        # A new connection has HEAD_TIMEOUT_S for its whole head; a kept-alive one has
        # IDLE_KEEPALIVE_S for its next whole head, waiting included (one timer, started once).
        if self._requests_seen:
            if self._idle_timer is None:
                self._idle_timer = gevent.Timeout(IDLE_KEEPALIVE_S, _SlowClient)
            self._timer = self._idle_timer
        else:
            self._timer = self._head_timer = gevent.Timeout(HEAD_TIMEOUT_S, _SlowClient)
        self._requests_seen += 1
        self._timer.start()
        line = self.rfile.readline(8192)
        return line.decode("latin-1")

    def read_request(self, raw_requestline):
        try:
            match = _REQUEST_LINE.fullmatch(raw_requestline.encode("latin-1"))
            if match is None:
                raise BadFraming("malformed request line")
            head = read_head(self.rfile, http11=match.group(3) == b"1")
        finally:
            self._timer.cancel()
        self._head = head
        return super().read_request(raw_requestline)

    def MessageClass(self, *args):  # noqa: N802 - gevent's name
        """gevent's head parser, replaced by the head ``read_request`` already checked."""
        return self._head

    def handle_one_request(self):
        try:
            return super().handle_one_request()
        except _SlowClient:
            return None  # close the connection; nothing was started for it
        finally:
            if self._timer is not None:
                self._timer.cancel()

    def _handle_client_error(self, ex):
        # gevent's own message quotes the request line (a key, a password, a prompt): log only
        # what kind of problem it was, never the input.
        reason = str(ex) if isinstance(ex, BadFraming) else type(ex).__name__
        log.info("refused a malformed request from %s: %s", self.client_address[0]
                 if isinstance(self.client_address, tuple) else "?", reason)
        return "400", _BAD_REQUEST

    def get_environ(self):
        environ = super().get_environ()
        environ[CLIENT_SOCKET_KEY] = self.socket
        environ[HEAD_CHECKED_KEY] = True
        return environ


def _over_capacity(environ, start_response):
    """The answer past ``server.maxConnections``, in the shape of the API asked."""
    message = ("this gateway has as many connections open as it can serve; retry in a moment "
               "(the operator can raise server.maxConnections)")
    if environ.get("PATH_INFO", "").startswith("/openai"):
        body = json.dumps(openai_error(503, message, "server_error", None, None)).encode()
    else:
        body = anthropic_error_body("overloaded_error", message)
    start_response("503 Service Unavailable", [("content-type", "application/json"),
                                               ("retry-after", "1"), ("connection", "close")])
    return [body]


class GatewayServer(WSGIServer):
    """gevent's WSGI server, counting open connections for ``max_connections``."""

    def __init__(self, *args, max_connections: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.open_connections = 0


class ServerErrorLog:
    """gevent's error log, routed through the application's logging with secrets redacted."""

    def write(self, message: str) -> None:
        message = message.strip()
        if message:
            log.warning("server: %s", mask_secretish(message))

    def flush(self) -> None:  # file-like, for WSGI's wsgi.errors
        pass

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)


def make_server(app, host: str, port: int, log=None, error_log=None,
                max_connections: int = 0) -> GatewayServer:
    """A gevent WSGI server for ``app``; ``log=None`` keeps per-request lines off the console.
    ``max_connections`` (0: no cap) bounds the open client connections."""
    return GatewayServer((host, port), app, handler_class=Handler, log=log,
                         error_log=error_log or ServerErrorLog(), max_connections=max_connections)
