"""A misbehaving upstream on a raw socket: each test scripts exactly what goes over the wire."""
from __future__ import annotations

import gzip
import json
from typing import Callable

import gevent
from gevent.server import StreamServer

from tests.mock_upstream import message, message_events


def read_request(sock) -> bytes:
    """Read one HTTP request (head and Content-Length body) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def response(status: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def good_json() -> bytes:
    body = json.dumps(message("claude-sonnet-4-20250514", [{"type": "text", "text": "fine"}])).encode()
    return response("200 OK", [("content-type", "application/json"), ("content-length", str(len(body))),
                               ("connection", "close")], body)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def sse_head() -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"connection: close\r\n\r\n")


def stream_events(text: str = "a fairly long answer " * 3) -> list[bytes]:
    return message_events(message("claude-sonnet-4-20250514", [{"type": "text", "text": text}],
                                  input_tokens=40, output_tokens=9))


def gzip_json() -> bytes:
    body = gzip.compress(json.dumps(message("claude-sonnet-4-20250514",
                                            [{"type": "text", "text": "zipped"}])).encode())
    return response("200 OK", [("content-type", "application/json"), ("content-encoding", "gzip"),
                               ("content-length", str(len(body))), ("connection", "close")], body)


class RawUpstream:
    """``behave(sock, request_bytes)`` answers each connection; default: a good JSON message."""

    def __init__(self):
        self.behave: Callable = lambda sock, req: sock.sendall(good_json())
        self.requests: list[bytes] = []
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def _handle(self, sock, address) -> None:
        try:
            req = read_request(sock)
            if not req:
                return
            self.requests.append(req)
            self.behave(sock, req)
        except OSError:
            pass  # the gateway hung up: that is what some tests want
        finally:
            sock.close()

    def stop(self) -> None:
        self.server.stop(timeout=1)


def trickle(sock, data: bytes, per_byte_s: float) -> None:
    for i in range(len(data)):
        sock.sendall(data[i:i + 1])
        gevent.sleep(per_byte_s)
