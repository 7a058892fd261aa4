"""The gevent WSGI server the gateway runs in (``python app.py`` and the tests).

The ``Handler`` reads each request head itself (``head.py``) and refuses what gevent's lenient
parser would accept with 400 and a closed connection (RFC 9112 §2.2, §3.2, §5.2, §6.3, §11.2)
before anything reaches a view; gevent then gets the lines it accepted (``RequestHead``) instead
of parsing the head again. It also bounds connections (in all, per client address), closes an
idle keyless connection sooner than an authenticated one, and never reads past a broken chunked
body. Nothing a client sent is ever echoed into a log line.
"""
from __future__ import annotations

import json
import logging
import socket
from functools import partial
from typing import Callable

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer

from ..core.errors import anthropic_error_body
from .head import REQUEST_LINE, BadFraming, RequestHead, read_head
from ..openai.response import openai_error
from ..core.redact import mask_secretish

log = logging.getLogger("ccgate.server")

CLIENT_SOCKET_KEY = "ccgate.client_socket"
HEAD_CHECKED_KEY = "ccgate.head_checked"  # this server refused control characters in the head
HEAD_TIMEOUT_S = 15.0  # a new connection's request head, to its blank line
IDLE_KEEPALIVE_S = 75.0  # a kept-alive connection's next request head, waiting included
# ... after a request that held no valid key (a scanner, a prober): slots are for clients
KEYLESS_IDLE_S = 5.0
AUTHENTICATED_KEY = "ccgate.authenticated"  # the app sets it when a key or password was valid
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class _SlowClient(BaseException):
    """A client that takes too long to send a request head (slowloris): the connection closes."""


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
        self._over_capacity: str | None = None  # why this connection is answered 503
        self._head: RequestHead | None = None
        super().__init__(sock, address, server, rfile)

    def handle(self):
        """One connection. Past ``server.max_connections`` open ones, or past the cap of its
        client address, its request is answered 503 at once and the connection closed, rather
        than the process running out of descriptors or one address holding every slot (the
        head is read first, so the client sees the answer, not a reset)."""
        server = self.server
        counted = isinstance(server, GatewayServer)  # not a plain WSGIServer (test stand-ins)
        address = self.client_address[0] if isinstance(self.client_address, tuple) else ""
        if counted:
            server.open_connections += 1
            here = server.by_address[address] = server.by_address.get(address, 0) + 1
            if 0 < server.max_connections < server.open_connections:
                self._over_capacity = ("this gateway has as many connections open as it can "
                                       "serve; retry in a moment (the operator can raise "
                                       "server.maxConnections)")
            elif 0 < server.address_cap(address) < here:
                self._over_capacity = ("too many connections from your address; close some "
                                       "and retry (the operator can raise "
                                       "server.maxConnectionsPerIP)")
        try:
            return super().handle()
        finally:
            if counted:
                server.open_connections -= 1
                left = server.by_address[address] = server.by_address[address] - 1
                if not left:
                    del server.by_address[address]
            for timer in (self._head_timer, self._idle_timer):
                if timer is not None:
                    timer.close()

    def log_request(self) -> None:
        # gevent formats a line for its own access log even when it has none to write to (3 µs
        # a request); CCGate keeps its own (ops/logs.py)
        if not getattr(self.server, "quiet", False):  # a plain WSGIServer (the tests' mock)
            super().log_request()

    def handle_one_response(self):
        if self._over_capacity:
            self.close_connection = True
            self.application = partial(_over_capacity, self._over_capacity)
        try:
            return super().handle_one_response()
        finally:
            # A request body whose chunked framing broke leaves the stream at an unknown place:
            # whatever follows must never be read as a next request (smuggling), whatever the
            # application answered.
            if getattr(self.wsgi_input, "_chunked_input_error", False):
                self.close_connection = True

    def read_requestline(self):
        # A new connection has HEAD_TIMEOUT_S for its whole head; a kept-alive one has
        # IDLE_KEEPALIVE_S for its next whole head, waiting included (one timer, started once).
        if self._requests_seen:
            if self.environ is not None and self.environ.get(AUTHENTICATED_KEY):
                if self._idle_timer is None:
                    self._idle_timer = gevent.Timeout(IDLE_KEEPALIVE_S, _SlowClient)
                self._timer = self._idle_timer
            else:  # the last request held no valid key: a short wait for the next one
                if self._head_timer is not None:
                    self._head_timer.close()
                self._timer = self._head_timer = gevent.Timeout(KEYLESS_IDLE_S, _SlowClient)
        else:
            self._timer = self._head_timer = gevent.Timeout(HEAD_TIMEOUT_S, _SlowClient)
        self._requests_seen += 1
        self._timer.start()
        line = self.rfile.readline(8192)
        return line.decode("latin-1")

    def read_request(self, raw_requestline):
        try:
            match = REQUEST_LINE.fullmatch(raw_requestline.encode("latin-1"))
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


def _over_capacity(message: str, environ, start_response):
    """The answer past ``server.maxConnections`` or an address's cap, in the shape of the API
    asked."""
    if environ.get("PATH_INFO", "").startswith("/openai"):
        body = json.dumps(openai_error(503, message, "server_error", None, None)).encode()
    else:
        body = anthropic_error_body("overloaded_error", message)
    start_response("503 Service Unavailable", [("content-type", "application/json"),
                                               ("retry-after", "1"), ("connection", "close")])
    return [body]


class GatewayServer(WSGIServer):
    """gevent's WSGI server, counting open connections for ``max_connections`` and per client
    address for ``address_cap`` (the cap of an address; 0: none)."""

    def __init__(self, *args, max_connections: int = 0,
                 address_cap: Callable[[str], int] = lambda address: 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.quiet = kwargs.get("log") is None  # no log of gevent's own: nothing to format
        self.max_connections = max_connections
        self.address_cap = address_cap
        self.open_connections = 0
        self.by_address: dict[str, int] = {}


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
                max_connections: int = 0, listener=None) -> GatewayServer:
    """A gevent WSGI server for ``app``; ``log=None`` keeps per-request lines off the console.
    ``max_connections`` (0: no cap) bounds the open client connections; a gateway app's
    ``address_cap`` (``server.maxConnectionsPerIP``) those of one client address. ``listener``:
    a listening socket to serve instead of binding ``host:port`` (a worker's, ``workers.py``)."""
    gateway = app.extensions.get("ccgate") if hasattr(app, "extensions") else None
    return GatewayServer(listener if listener is not None else (host, port), app, handler_class=Handler, log=log,
                         error_log=error_log or ServerErrorLog(), max_connections=max_connections,
                         address_cap=gateway.address_cap if gateway else lambda address: 0)
