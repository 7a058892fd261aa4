"""Noticing a client that hung up, from the moment its request goes upstream until its answer ends.

A client sends nothing while it waits for a response, so its socket turning readable with no data
(EOF) means it closed its side. That is a hang-up — unless the client only half-closed
(``shutdown(SHUT_WR)`` after sending its request) and still reads. The two look the same until
something is written: before the response starts, the watch writes an interim
``HTTP/1.1 100 Continue`` (which every HTTP/1.1 client must accept and skip, RFC 9110 §15.2);
a client that really left answers it with a reset, a half-closed one does not. Once the response
has started, EOF counts as a hang-up (the relay's next write would fail anyway).
"""
from __future__ import annotations

import socket
from typing import Callable

import gevent
from gevent.event import Event

INTERIM = b"HTTP/1.1 100 Continue\r\n\r\n"
# How long to wait for a reset after the interim probe: a round trip on any sane network.
PROBE_WAITS_S = (0.05, 0.2, 0.5, 1.0)


def _was_reset(sock: socket.socket) -> bool:
    """Whether the peer answered with a reset. After its FIN, recv() keeps returning EOF even
    then (Linux checks the FIN first), so ask for the socket's pending error instead."""
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    except OSError:
        return True


def _peek(sock: socket.socket) -> bytes | None:
    """One byte peeked (waits until readable); b"" on EOF, None when the socket was reset."""
    try:
        return sock.recv(1, socket.MSG_PEEK)
    except OSError:
        return None


class ClientWatch:
    """One request's watch over its client socket; ``gone`` is set when the client left.

    ``on_gone`` callbacks run once, in the watch's greenlet, when that happens (the relay shuts
    the upstream socket down then). The owner calls ``stop()`` when the response is over; a watch
    that ended on its own (pipelined data, half-close) is simply dead.
    """

    def __init__(self, sock: socket.socket, may_probe: bool):
        self.sock = sock
        self.may_probe = may_probe  # HTTP/1.1: an interim 100 may be sent before the response
        self.responding = False  # the response is being written: no more probes
        self.gone = Event()
        self._on_gone: list[Callable[[], None]] = []
        self._greenlet = gevent.spawn(self._run)

    def on_gone(self, callback: Callable[[], None]) -> None:
        if self.gone.is_set():
            callback()
        else:
            self._on_gone.append(callback)

    def _run(self) -> None:
        data = _peek(self.sock)
        if data:
            return  # a pipelined request: the client is there, and the server reads it next
        if data == b"" and not self.responding and self.may_probe and self._half_closed():
            return  # still listening: the relay's own writes tell if it leaves later
        self.gone.set()
        callbacks, self._on_gone = self._on_gone, []
        for callback in callbacks:
            callback()

    def _half_closed(self) -> bool:
        try:
            self.sock.sendall(INTERIM)
        except OSError:
            return False
        for wait in PROBE_WAITS_S:
            gevent.sleep(wait)
            if self.responding:
                return True  # the answer is going out: its writes decide from here
            if _was_reset(self.sock):
                return False
        return True

    def stop(self) -> None:
        """End the watch (synchronously: the server reads the next request from this socket)."""
        self._greenlet.kill()


def shut_down(sock: socket.socket | None) -> None:
    """Shut a socket down so that a greenlet blocked reading it returns at once."""
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone
