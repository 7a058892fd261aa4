"""Reading an Anthropic SSE stream event by event, for the translators of both OpenAI surfaces
(pure)."""
from __future__ import annotations

import json

from ..core.sse import Event, SSEParser


class AnthropicEvents:
    """Feed raw Anthropic SSE bytes; each whole event goes to the subclass's ``_on_<type>``
    handler (``message_start``, ``content_block_delta``, ``error``, …), whose bytes are returned.
    Nothing is handled once ``finished``; pings and events that are not JSON objects are skipped."""

    def __init__(self) -> None:
        self.finished = False
        self._parser = SSEParser()

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self.event(e) for e in self._parser.feed(chunk))

    def flush(self) -> bytes:
        """An event cut short of its closing blank line, handled."""
        return b"".join(self.event(e) for e in self._parser.flush())

    def event(self, event: Event) -> bytes:
        if self.finished or event.event == "ping":
            return b""
        try:
            doc = json.loads(event.data)
        except ValueError:
            return b""
        if not isinstance(doc, dict):
            return b""
        kind = event.event if event.event != "message" else doc.get("type")
        handler = getattr(self, f"_on_{kind}", None)
        return handler(doc) if handler else b""
