"""Noticing a client that hung up, from the moment its request goes upstream until its answer ends.

A client sends nothing while it waits for a response, so its socket turning readable with no data
(EOF) means it closed its side. That is a hang-up — unless the client only half-closed
(``shutdown(SHUT_WR)`` after sending its request) and still reads. The two look the same until
something is written: before the response starts, the watch writes an interim
``HTTP/1.1 100 Continue`` (which every HTTP/1.1 client must accept and skip, RFC 9110 §15.2);
a client that really left answers it with a reset, a half-closed one does not. Once the response
has started, an EOF counts as a hang-up (the relay's next write would fail anyway) — unless the
EOF was already there when the response started (the upstream answered in the same turn of the
loop as the client's FIN arrived, before the watch could probe): then the response's own bytes
are the probe, a reset means gone, and the interim is never written into a response. Taking that
EOF for a hang-up lost a half-closed client's body 1 run in 6.
"""
from __future__ import annotations

import socket
from typing import Callable, TypeVar

import gevent
from gevent import get_hub, getcurrent
from gevent.monkey import get_original

T = TypeVar("T")
_readable_now = get_original("select", "select")
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


class ClientGone(Exception):
    """The client hung up before its answer started."""


class ClientWatch:
    """One request's watch over its client socket; ``gone`` is True once the client left.

    It costs no greenlet while nothing happens: a libev read watcher on the client socket calls
    back (in the hub) only when the socket turns readable, which a waiting client never makes
    it. ``on_gone`` callbacks then run once (the relay shuts the upstream socket down);
    ``interruptible()`` runs a stretch of the request's own greenlet (the upstream call) that a
    hang-up interrupts with ``ClientGone``, the way ``gevent.Timeout`` interrupts. Only the rare
    EOF before the response, which may be a half-close, gets a greenlet for the interim probe.
    The owner calls ``stop()`` when the response is over.
    """

    def __init__(self, sock: socket.socket, may_probe: bool):
        self.sock = sock
        self.may_probe = may_probe  # HTTP/1.1: an interim 100 may be sent before the response
        self.responding = False  # the response is being written (``respond``)
        self._early_eof = False  # the client's EOF was there before the response started
        self.gone = False
        self._on_gone: list[Callable[[], None]] = []
        self._target = None  # the greenlet to interrupt, while ``interruptible`` runs
        self._prober: gevent.Greenlet | None = None
        self._io = get_hub().loop.io(sock.fileno(), 1)  # 1: readable
        self._io.start(self._readable)

    def respond(self) -> None:
        """The response starts: from here an EOF is a hang-up, unless it was already there."""
        self.responding = True
        try:
            # gevent's recv waits when nothing is pending, whatever the flags: ask the kernel
            # first, without waiting, whether anything (an EOF) is there at all
            if _readable_now([self.sock.fileno()], [], [], 0)[0]:
                self._early_eof = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (OSError, ValueError):
            self._early_eof = False  # a reset or a closed socket: the watch reports those

    def on_gone(self, callback: Callable[[], None]) -> None:
        if self.gone:
            callback()
        else:
            self._on_gone.append(callback)

    def interruptible(self, fn: Callable[..., T], *args) -> T:
        """``fn(*args)`` in this greenlet; a hang-up meanwhile raises ``ClientGone`` in it.
        (A plain call, not a context manager: this runs for every request.)"""
        if self.gone:
            raise ClientGone()
        self._target = getcurrent()
        try:
            return fn(*args)
        finally:
            self._target = None

    def _readable(self) -> None:  # in the hub: must not block
        self._io.stop()
        try:
            data = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            self._io.start(self._readable)  # nothing after all
            return
        except OSError:
            data = None  # reset
        if data:
            return  # a pipelined request: the client is there, and the server reads it next
        if data == b"" and (self._early_eof if self.responding else self.may_probe):
            self._prober = gevent.spawn(self._probe)  # may be a half-close: ask
            return
        self._left()

    def _probe(self) -> None:
        if not self._half_closed():
            get_hub().loop.run_callback(self._left)

    def _left(self) -> None:  # in the hub
        if self.gone:
            return
        self.gone = True
        callbacks, self._on_gone = self._on_gone, []
        for callback in callbacks:
            callback()
        if self._target is not None:
            target, self._target = self._target, None
            target.throw(ClientGone())

    def _half_closed(self) -> bool:
        """Whether the client only half-closed: no reset came back for what was written to it
        (the interim answer, or once the response started, the response itself)."""
        if not self.responding:
            try:
                self.sock.sendall(INTERIM)
            except OSError:
                return False
        for wait in PROBE_WAITS_S:
            gevent.sleep(wait)
            if _was_reset(self.sock):
                return False
        return True

    def stop(self) -> None:
        """End the watch (the server reads the next request from this socket)."""
        if self._io is not None:
            self._io.stop()
            self._io.close()
            self._io = None  # it holds ``self._readable``: a cycle the collector would have to break
        self._target = None
        self._on_gone = []
        if self._prober is not None:
            self._prober.kill()


def shut_down(sock: socket.socket | None) -> None:
    """Shut a socket down so that a greenlet blocked reading it returns at once."""
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone
