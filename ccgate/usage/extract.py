"""Token counts from Anthropic responses: a whole JSON body, or SSE events as they pass.

Anthropic's ``input_tokens`` excludes cache tokens: a request's whole prompt is input + cache write
+ cache read. In a stream, ``message_start`` carries the input-side counts and ``message_delta``
carries cumulative counts that replace earlier ones (its ``output_tokens`` is the final count).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

from ..core.errors import parse_anthropic_error
from ..core.sse import Event, SSEParser, whole_events


_USAGE_FIELDS = (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"),
                 ("cache_creation_input_tokens", "cache_creation_tokens"),
                 ("cache_read_input_tokens", "cache_read_tokens"))


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_1h_tokens: int = 0  # the part of cache_creation written with a 1-hour TTL
    web_search_requests: int = 0  # server-side web searches (billed per search, not per token)
    inference_geo: str | None = None  # where the answer says it ran ("us" costs more)
    speed: str | None = None  # "fast": fast mode, billed at a multiple of the token prices
    # Whether a ``usage`` object was reported at all (a message was generated), and the model the
    # response names: what the response says about itself, not token counts.
    seen: bool = field(default=False, compare=False)
    model: str | None = field(default=None, compare=False)

    @property
    def total_tokens(self) -> int:
        return (self.input_tokens + self.output_tokens + self.cache_creation_tokens
                + self.cache_read_tokens)

    def update(self, usage: object) -> None:
        """Take every count present in an Anthropic ``usage`` object (later values replace)."""
        if not isinstance(usage, dict):
            return
        self.seen = True
        # ``type(v) is int``: a count, never a bool (an int subclass) nor a float
        for key, attr in _USAGE_FIELDS:
            value = usage.get(key)
            if type(value) is int and value >= 0:
                setattr(self, attr, value)
        split = usage.get("cache_creation")
        if isinstance(split, dict):
            one_hour = split.get("ephemeral_1h_input_tokens")
            if type(one_hour) is int and one_hour >= 0:
                self.cache_creation_1h_tokens = one_hour
        server = usage.get("server_tool_use")
        if isinstance(server, dict):
            searches = server.get("web_search_requests")
            if type(searches) is int and searches >= 0:
                self.web_search_requests = searches
        geo, speed = usage.get("inference_geo"), usage.get("speed")
        if isinstance(geo, str) and geo:
            self.inference_geo = geo[:32]
        if isinstance(speed, str) and speed:
            self.speed = speed[:16]


def usage_from_body(body: bytes) -> Usage:
    """The usage of a non-streaming response body (zero when it has none or is not JSON)."""
    usage = Usage()
    try:
        doc = orjson.loads(body)  # a token count past 64 bits (a float here) is not a count
    except ValueError:
        return usage
    if isinstance(doc, dict):
        usage.update(doc.get("usage"))
        if isinstance(doc.get("model"), str):
            usage.model = doc["model"]
    return usage


# Where a delta's content starts: its text, thinking or partial tool input is the last field.
# (the content is what follows its key, less '"}}').
_DELTA_VALUE = re.compile(rb'"(?:text|thinking|partial_json)"\s*:\s*"')
_USAGE_EVENTS = ("message_start", "message_delta", "error")  # the events usage is read from
_USAGE_EVENTS_BYTES = tuple(name.encode() for name in _USAGE_EVENTS)
# The other events every stream has, each sent whole: a chunk that is one of them is skipped.
_IGNORED_STARTS = tuple(b"event: %s\n" % name for name in (
    b"ping", b"content_block_start", b"content_block_stop", b"message_stop"))
CHARS_PER_TOKEN = 4


class StreamUsage:
    """Feed the raw bytes of an Anthropic SSE stream; ``usage`` is always what was reported so far.

    Most chunks are one whole ``content_block_delta`` that starts with the same bytes as the one
    before it (event line, type, index, the key of its content): that prefix is learned from a
    delta read the usual way, and a chunk that starts with it, ends its event and holds no other
    is counted from its length alone. (A raw CR inside such a delta, which JSON does not allow,
    is then counted to the end of the line instead of cut at the CR: more, never less.) A chunk
    that is one whole ``ping``, ``content_block_start``/``stop`` or ``message_stop`` event, which
    carry no usage, is skipped without parsing.
    """

    __slots__ = ("usage", "error_type", "stop_reason", "delta_chars", "_parser", "_prefix",
                 "_prefix_len", "_between_events")

    def __init__(self) -> None:
        self.usage = Usage()
        self.delta_chars = 0  # content the deltas carried, for a stream cut before its usage
        self.error_type: str | None = None
        self.stop_reason: str | None = None
        self._parser = SSEParser()
        self._prefix = b"\0"  # the last whole delta's bytes up to its content (none yet)
        self._prefix_len = 1
        self._between_events = True  # the parser holds nothing (its ``clean``, kept here)

    def feed(self, chunk: bytes) -> None:
        if self._between_events:
            if chunk.endswith(b"\n\n") and chunk.count(b"\n") == 3:  # one event of two lines
                if chunk.startswith(self._prefix):
                    # The content after the prefix, less its closing '"}}' and the blank line.
                    chars = (len(chunk) - self._prefix_len - 5 if chunk.isascii() else len(
                        chunk[self._prefix_len:-2].decode("utf-8", "replace")) - 3)
                    if chars > 0:
                        self.delta_chars += chars
                    return
                if chunk.startswith(_IGNORED_STARTS) and chunk.find(b"\r") < 0:
                    return  # a kind that carries no usage (no CR: the two lines are the lines)
            # Whole events are read as bytes: a delta is counted without decoding it.
            raw, pos = whole_events(chunk)
            for name, data in raw:
                if name == b"content_block_delta":
                    self._count_delta(data, chunk if len(raw) == 1 and pos == len(chunk) else None)
                elif name in _USAGE_EVENTS_BYTES:
                    self._take(Event(name.decode(), data.decode("utf-8", "replace")))
            if pos == len(chunk):
                return
            chunk = chunk[pos:]
        parser = self._parser
        for event in parser.feed(chunk):
            self._take(event)
        self._between_events = parser.clean

    def _count_delta(self, data: bytes, alone: bytes | None = None) -> None:
        """Count a delta's content; ``alone``: the chunk that is this event and nothing else,
        whose bytes up to the content become the prefix of the fast path."""
        found = _DELTA_VALUE.search(data)
        if found:
            rest = data[found.end():]
            chars = len(rest) if rest.isascii() else len(rest.decode("utf-8", "replace"))
            self.delta_chars += max(0, chars - 3)
            if alone is not None:
                self._prefix = alone[:len(alone) - 2 - len(rest)]
                self._prefix_len = len(self._prefix)

    def close(self) -> None:
        """End of stream: an event cut short of its blank line still counts. A stream that never
        reported its final usage is billed for at least the text it carried."""
        for event in self._parser.flush():
            self._take(event)
        if self.stop_reason is None:
            carried = self.delta_chars // CHARS_PER_TOKEN
            self.usage.output_tokens = max(self.usage.output_tokens, carried)

    def _take(self, event: Event) -> None:
        name = event.event
        if name == "content_block_delta":
            self._count_delta(event.data.encode())  # no JSON decode on the hot path
            return
        if name not in _USAGE_EVENTS:
            return
        try:
            doc = orjson.loads(event.data)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        if name == "message_start":
            message = doc.get("message")
            if isinstance(message, dict):
                self.usage.seen = True
                self.usage.update(message.get("usage"))
                if isinstance(message.get("model"), str):
                    self.usage.model = message["model"]
        elif name == "message_delta":
            self.usage.update(doc.get("usage"))
            delta = doc.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                self.stop_reason = delta["stop_reason"]
        else:
            self.error_type = parse_anthropic_error(event.data).type or "api_error"
