"""The gevent WSGI server the gateway runs in (``python app.py`` and the tests)."""
from __future__ import annotations

from gevent.pywsgi import WSGIHandler, WSGIServer

CLIENT_SOCKET_KEY = "ccgate.client_socket"


class Handler(WSGIHandler):
    """Exposes the client socket so a relay can notice a hang-up while the upstream is quiet."""

    def get_environ(self):
        environ = super().get_environ()
        environ[CLIENT_SOCKET_KEY] = self.socket
        return environ


def make_server(app, host: str, port: int, log=None, error_log="default") -> WSGIServer:
    """A gevent WSGI server for ``app``; ``log=None`` keeps per-request lines off the console."""
    return WSGIServer((host, port), app, handler_class=Handler, log=log, error_log=error_log)
