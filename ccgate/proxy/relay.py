"""The client's side of an accepted answer: upstream bytes relayed as they arrive, one cleanup."""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator, NamedTuple, Protocol


from ..core.errors import anthropic_error_event
from ..core.redact import StreamRedactor
from ..core.sse import EventTooLarge
from ..upstreams.pool import Pool, UpstreamState
from .types import Answer, Exchange, Observer, Outcome, StreamCut
from .watch import ClientWatch

log = logging.getLogger("ccgate.proxy")


class Transform(Protocol):
    """Reshapes a relayed body on its way out (the OpenAI surface translates streams with one)."""

    def feed(self, data: bytes) -> bytes:
        """The output for these input bytes (may be empty)."""

    def end(self) -> bytes:
        """The output once the input is over (or broke)."""


class UpstreamUse(NamedTuple):
    """The upstream side of a relayed answer: what its end gives back."""
    pool: Pool
    up: UpstreamState
    exchange: Exchange

    def end(self, completed: bool) -> None:
        self.exchange.end(completed)
        self.pool.release(self.up)


class RelayBody:
    """The client's response body: upstream bytes as they arrive, then one cleanup. Every
    answer of the proxy is one, the gateway's own (``use`` None: nothing upstream to give back)
    included.

    The bytes pass a ``StreamRedactor`` (the upstream's key and URL never reach the client) and
    an optional ``Transform``; the observer sees them as the upstream sent them. This object
    owns the end of the response: its cleanup also runs the ``on_end`` callbacks (the access log). The cleanup (stop watching the client,
    return or drop the upstream connection, release the upstream's in-flight slot, tell the
    observer) runs exactly once: when the bytes run out, when the upstream breaks, when the client
    leaves mid-body, and also when the server closes the body without ever iterating it (a client
    gone before the first byte).
    """

    def __init__(self, use: UpstreamUse | None, answer: Answer, chunks: Iterable[bytes],
                 watch: ClientWatch | None, observer: Observer | None, outcome: Outcome,
                 redactor: StreamRedactor):
        self.use = use
        self.answer = answer
        self.chunks = chunks
        self.observer = observer
        self.outcome = outcome
        self.redactor = redactor
        self._gen: Iterator[bytes] | None = None
        self._cleaned = False
        self._watch = watch
        # Bytes still to come of a body whose length is known: when none are left the answer
        # is whole before its last bytes go out.
        self._left = answer.length
        self._settled = False
        self.transform: Transform | None = None  # set before iterating, to reshape the bytes
        self.sent = 0  # bytes given to the client
        self.on_end: list[Callable[[int], None]] = []  # run once after cleanup, with ``sent``
        if observer is not None:
            observer.begin(outcome, answer)
        if watch is not None:
            watch.respond()
            watch.on_gone(self._client_left)

    def _client_left(self) -> None:
        # Shut the upstream socket down rather than close the response: the relay greenlet is
        # inside a read on it, which then returns at once; the relay's finally does the rest.
        self.outcome.client_gone = True
        if self.use is not None:
            self.use.exchange.interrupt()

    def __iter__(self) -> Iterator[bytes]:
        self._gen = self._generate()
        return self._gen

    def _out(self, data: bytes, end: bool = False) -> bytes:
        """What the client gets for ``data``: through the transform when there is one."""
        if self.transform is not None:
            data = (self.transform.feed(data) if data else b"") + (self.transform.end() if end
                                                                   else b"")
        self.sent += len(data)
        return data

    def _generate(self) -> Iterator[bytes]:
        observer, outcome, redactor, transform = (self.observer, self.outcome, self.redactor,
                                                  self.transform)
        sse = self.answer.sse
        try:
            # The loop runs once per upstream read (every SSE event): ``_out`` is inlined.
            for chunk in self.chunks:
                if observer is not None:
                    whole = observer.feed(chunk)
                    if not self._settled and (whole or self._left is not None):
                        self._settle_when_whole(len(chunk), whole)
                chunk = redactor.feed(chunk)
                if transform is not None and chunk:
                    chunk = transform.feed(chunk)
                if chunk:
                    self.sent += len(chunk)
                    yield chunk
            tail = self._out(redactor.flush(), end=True)
            if tail:
                yield tail
            outcome.completed = True
        except GeneratorExit:
            outcome.client_gone = True
            raise
        except StreamCut as cut:
            outcome.cut = cut.message
            log.info("stream ended by the gateway: %s", cut.message)
            if sse:
                yield self._out(anthropic_error_event(cut.error_type, cut.message), end=True)
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
            log.warning("upstream %s: %s", outcome.upstream, outcome.upstream_error)
            if self.use is not None:
                self.use.pool.failed(self.use.up, outcome.upstream_error)
            if sse:
                yield self._out(anthropic_error_event("api_error", msg), end=True)
        finally:
            self._cleanup()

    def _settle_when_whole(self, size: int, whole: bool) -> None:
        """Finish the observer (write the usage record) as soon as the answer is whole, before
        the client gets its last bytes: whatever happens next, the record exists."""
        if self._left is not None:
            self._left -= size
        if whole or self._left == 0:
            self._settled = True
            self.observer.settle(self.outcome, whole=True)

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
        if self.use is not None:
            self.use.end(self.outcome.completed)
        if self.observer is not None:
            self.observer.finish(self.outcome)
        on_end, self.on_end = self.on_end, []
        for callback in on_end:
            callback(self.sent)
        # Nothing of this request may keep another part alive: without cycles its objects are
        # freed the moment the server drops the body, not by the cyclic garbage collector.
        self._watch = self._gen = None

