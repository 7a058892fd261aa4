"""Incremental Server-Sent Events parser (bytes in, events out), safe across any chunk split.

It works on bytes and decodes only complete lines, so a multi-byte UTF-8 character split across two
TCP reads is never mangled. Line ends may be ``\\n``, ``\\r\\n`` or ``\\r`` (the SSE spec allows all
three), including a ``\\r\\n`` pair split between two chunks.
"""
from __future__ import annotations

import re
from typing import NamedTuple


class Event(NamedTuple):
    event: str  # "message" when the stream gave no event name
    data: str


MAX_EVENT_BYTES = 8 * 1024 * 1024
# The usual shape of a whole event, as Anthropic sends one per write: matched in one C call. Only
# what the line-by-line path would read the same way matches; anything else takes that path.
# ``.`` stops only at LF: it is used on chunks without a CR (about twice as fast as a class).
_WHOLE_EVENT = re.compile(rb"event: ?([^\n ].*)\ndata: ?(.*)\n\n")


class EventTooLarge(ValueError):
    """One SSE event grew past ``MAX_EVENT_BYTES`` (a broken or hostile upstream)."""


def whole_events(chunk: bytes) -> tuple[list[tuple[bytes, bytes]], int]:
    """The events at the start of ``chunk`` that are whole and in the usual shape, as
    ``(name, data)`` bytes, and where they end (the rest is for the line parser)."""
    found, pos, end = [], 0, len(chunk)
    if chunk.find(b"\r") >= 0:  # a CR ends lines too: the line parser reads such chunks
        return found, pos
    while pos < end:
        whole = _WHOLE_EVENT.match(chunk, pos)
        if whole is None:
            break
        found.append(whole.groups())
        pos = whole.end()
    return found, pos


class SSEParser:
    """Feed raw bytes with ``feed``; it returns the events those bytes completed."""

    __slots__ = ("_partial", "_partial_size", "_data_size", "_skip_lf", "_event", "_data")

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # pieces of a line not yet ended
        self._partial_size = 0
        self._data_size = 0  # bytes of the current event's data lines
        self._skip_lf = False  # the last chunk ended in "\r": a "\n" starting the next one is its pair
        self._event = ""
        self._data: list[str] = []

    def _check_size(self) -> None:
        if self._partial_size + self._data_size > MAX_EVENT_BYTES:
            self._partial, self._partial_size, self._data_size = [], 0, 0
            self._event, self._data = "", []
            raise EventTooLarge(f"an SSE event over {MAX_EVENT_BYTES // (1024 * 1024)} MB")

    @property
    def clean(self) -> bool:
        """Between events: nothing of a line or an event is held."""
        return not (self._partial or self._skip_lf or self._event or self._data)

    def feed(self, chunk: bytes) -> list[Event]:
        if not self.clean:
            return self._feed_lines(chunk)
        raw, pos = whole_events(chunk)
        events = [Event(name.decode("utf-8", "replace"), data.decode("utf-8", "replace"))
                  for name, data in raw]
        if pos == len(chunk):
            return events
        return events + self._feed_lines(chunk[pos:] if pos else chunk)

    def _feed_lines(self, chunk: bytes) -> list[Event]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        if not chunk:
            return []
        if chunk.find(b"\n") < 0 and chunk.find(b"\r") < 0:
            self._partial.append(chunk)
            self._partial_size += len(chunk)
            self._check_size()
            return []
        if self._partial:
            self._partial.append(chunk)
            chunk = b"".join(self._partial)
        lines = chunk.splitlines(keepends=True)
        last = lines[-1]
        if last.endswith((b"\n", b"\r")):
            self._partial, self._partial_size = [], 0
            self._skip_lf = last.endswith(b"\r")
        else:
            tail = lines.pop()
            self._partial, self._partial_size = [tail], len(tail)
        events: list[Event] = []
        for raw in lines:
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if not line:
                if self._data or self._event:
                    events.append(Event(self._event or "message", "\n".join(self._data)))
                self._event, self._data, self._data_size = "", [], 0
                continue
            name, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if name == "data":
                self._data.append(value)
                self._data_size += len(value)
                self._check_size()
            elif name == "event":
                self._event = value
            # "id", "retry" and ":comment" lines carry nothing the gateway needs
        return events

    def flush(self) -> list[Event]:
        """At the end of the stream: the last event even if its closing blank line never came.

        The SSE spec drops such an event; the gateway keeps it because it is the data the upstream
        really sent (a ``message_delta`` with the final usage must still be billed).
        """
        self._skip_lf = False
        return self.feed(b"\n\n" if self._partial else b"\n")

    @property
    def pending(self) -> bool:
        """True when bytes of an unfinished event are held (a stream cut mid-event)."""
        return bool(self._partial or self._data or self._event)


def stream_complete(stop_reason: str | None) -> bool:
    """The one rule for "this message arrived whole", which metering and the OpenAI translation
    share: its final ``message_delta`` (stop reason and final usage) came, whether or not
    ``message_stop`` followed (a client may hang up, an upstream may drop the connection,
    in between: litellm does the first)."""
    return stop_reason is not None
