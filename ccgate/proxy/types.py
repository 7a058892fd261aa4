"""What passes between a surface, the forwarder and its observer (metering): plain data."""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Protocol


@dataclass
class ProxyRequest:
    method: str
    path: str  # below the surface prefix, e.g. "/v1/messages"
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    model: str | None = None
    stream: bool = False
    session: str | None = None
    body_json: dict | None = None  # parsed body, needed only for modelMap
    client_socket: socket.socket | None = None
    interim_ok: bool = True  # an HTTP/1.1 client: the watch may probe it with "100 Continue"
    upstream: str | None = None  # only this upstream: it holds the objects the request names


@dataclass(frozen=True)
class Answer:
    """What the forwarder decided, once, about the answer it relays; the observer (metering),
    the transform (the OpenAI stream) and the surface all read this, none works it out again."""
    status: int
    content_type: str
    sse: bool  # a stream of events: relayed event by event, metered and translated as one
    length: int | None = None  # the body's length in relayed bytes, when known

    @classmethod
    def of(cls, status: int, content_type: str, asked_stream: bool, length: str,
           decoded: bool) -> "Answer":
        """The answer to a request (``asked_stream``: it asked for a stream) with these headers.
        A successful answer to a stream request that is not JSON is a stream, whatever its
        content type claims (some mirrors send ``text/plain``)."""
        sse = content_type.startswith("text/event-stream") or (
            asked_stream and status < 300 and "json" not in content_type)
        known = length.isdigit() and not decoded and not sse
        return cls(status, content_type, sse, int(length) if known else None)


GATEWAY_JSON = "application/json"


@dataclass
class Outcome:
    """How a relayed request ended, for metering and logs."""
    status: int
    upstream: str | None
    completed: bool = False  # the upstream body was relayed to its end
    client_gone: bool = False
    upstream_error: str | None = None
    ttfb_ms: float | None = None
    cut: str | None = None  # why the gateway ended the stream itself (a spend limit)
    price_multiplier: float = 1.0  # the answering upstream's priceMultiplier (upstreamCost)
    # one per upstream tried, in order: {"upstream", "status" or "error", "ms"}
    attempts: list = field(default_factory=list)


class Exchange(Protocol):
    """One upstream answer as the forwarder and the relay see it: the wire is behind this
    (``attempt.WireExchange`` over requests; scripted answers in the tests)."""
    status: int
    headers: Mapping[str, str]  # case-insensitive

    def chunks(self, decoded: bool) -> Iterator[bytes]:
        """The body as it arrives (``decoded``: a content-encoding undone)."""

    def interrupt(self) -> None:
        """The client left: a read waiting on the upstream returns at once."""

    def end(self, completed: bool) -> None:
        """Give the connection back (``completed``: for reuse) or drop it."""


class StreamCut(Exception):
    """Raised by an observer's ``feed`` to end a stream with an error event (``error_type``)."""

    def __init__(self, message: str, error_type: str = "billing_error"):
        super().__init__(message)
        self.message = message
        self.error_type = error_type


@dataclass
class Relay:
    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]
    answer: Answer


class Observer(Protocol):
    """Watches one relayed response (metering plugs in here)."""

    def begin(self, outcome: Outcome, answer: Answer) -> None:
        """The answer starts; ``outcome`` is filled in as it goes and final at ``finish``."""

    def feed(self, chunk: bytes) -> bool:
        """Bytes as the upstream sent them; True once the answer is whole (a stream's final
        usage has arrived) though bytes may follow. May raise StreamCut."""

    def settle(self, outcome: Outcome, whole: bool = False) -> None:
        """The answer is whole (``whole``, though ``outcome`` is not completed yet): record it
        now, before its last bytes go out, so a crash after the client saw the end cannot lose
        the record (called at most once)."""

    def finish(self, outcome: Outcome) -> None:
        """The answer ended, for whatever reason (called exactly once)."""
