"""The gevent WSGI server the gateway runs in (``python app.py`` and the tests)."""
from __future__ import annotations

import socket

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer

CLIENT_SOCKET_KEY = "ccgate.client_socket"
REQUEST_LINE_TIMEOUT_S = 75.0  # an idle keep-alive connection, then its request line
HEADERS_TIMEOUT_S = 15.0  # the rest of a request's head, once its first line is in


class _SlowClient(BaseException):
    """A client that takes too long to send a request head (slowloris): the connection closes."""


class Handler(WSGIHandler):
    """Exposes the client socket so a relay can notice a hang-up while the upstream is quiet,
    and closes connections whose request head does not arrive in time (slowloris).

    It also turns Nagle's algorithm off: a response's last small write (the closing chunk) would
    otherwise wait for the client's delayed ACK, 40 ms per request, and SSE events would bunch.
    """

    def __init__(self, sock, address, server, rfile=None):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket): nothing to turn off
        super().__init__(sock, address, server, rfile)

    def read_requestline(self):
        with gevent.Timeout(REQUEST_LINE_TIMEOUT_S, _SlowClient):
            return super().read_requestline()

    def read_request(self, raw_requestline):
        with gevent.Timeout(HEADERS_TIMEOUT_S, _SlowClient):
            return super().read_request(raw_requestline)

    def handle_one_request(self):
        try:
            return super().handle_one_request()
        except _SlowClient:
            return None  # close the connection; nothing was started for it

    def get_environ(self):
        environ = super().get_environ()
        environ[CLIENT_SOCKET_KEY] = self.socket
        return environ


def make_server(app, host: str, port: int, log=None, error_log="default") -> WSGIServer:
    """A gevent WSGI server for ``app``; ``log=None`` keeps per-request lines off the console."""
    return WSGIServer((host, port), app, handler_class=Handler, log=log, error_log=error_log)
