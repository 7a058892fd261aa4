"""``Periodic``: a background loop with an owner. Every greenlet the gateway runs besides requests
is one: its owner starts it (never a constructor) and stops it, an exception is logged and the
loop goes on, and a loop that died anyway is logged and noticed (``alive``, in /health)."""
from __future__ import annotations

import logging
from typing import Callable

import gevent

log = logging.getLogger("ccgate")


class Periodic:
    """``fn()`` every ``every`` seconds (or after the delay ``fn`` returns, when it returns one)."""

    def __init__(self, name: str, every: float, fn: Callable[[], float | None]):
        self.name = name
        self.every = every
        self.fn = fn
        self._greenlet: gevent.Greenlet | None = None

    def _run(self) -> None:
        delay = self.every
        while True:
            gevent.sleep(delay)
            try:
                delay = self.fn() or self.every
            except Exception:
                log.exception("%s failed; trying again in %.0f s", self.name, self.every)
                delay = self.every

    def start(self) -> "Periodic":
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)
            self._greenlet.link_exception(
                lambda g: log.error("the %s loop died: %r", self.name, g.exception))
        return self

    @property
    def alive(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
