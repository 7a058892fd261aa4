"""A mock Anthropic API on loopback, scriptable per test.

It speaks the Messages API wire format (JSON and SSE) closely enough for the official SDKs, records
every request it receives, and lets a test replace its behaviour with ``mock.handler = fn``, where
``fn(req) -> MockResponse``. Streams are produced event by event with optional delays, so relaying
and client disconnects can be observed from the upstream's side.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import gevent
from ccgate.http.server import Handler
from gevent.pywsgi import WSGIServer

from tests.mock_wire import error_body, message, message_events, sse  # noqa: F401 (re-exported)


@dataclass
class MockRequest:
    method: str
    path: str
    query: str
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class MockResponse:
    status: int = 200
    headers: list = field(default_factory=lambda: [("content-type", "application/json")])
    body: Iterable[bytes] | bytes = b""
    delay_s: float = 0.0  # before the status line


class MockUpstream:
    """One mock upstream server. ``name`` appears in the default answer's text."""

    def __init__(self, name: str = "mock"):
        self.name = name
        self.requests: list[MockRequest] = []
        self.handler: Callable[[MockRequest], MockResponse] | None = None
        self.event_delay_s = 0.0
        self.stream_log: list[dict] = []  # per stream: events sent, whether the client went away
        self.server = WSGIServer(("127.0.0.1", 0), self._wsgi, handler_class=Handler, log=None,
                                 error_log=None)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "MockUpstream":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(timeout=1)

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- default behaviour ------------------------------------------------------------------------
    def reply_text(self, req: MockRequest) -> str:
        return f"Hello from {self.name}!"

    def default(self, req: MockRequest) -> MockResponse:
        if req.path.endswith("/v1/models"):
            return MockResponse(body=json.dumps({"data": [
                {"type": "model", "id": "claude-sonnet-4-20250514", "display_name": "Claude Sonnet 4",
                 "created_at": "2025-05-22T00:00:00Z"}], "has_more": False,
                "first_id": "claude-sonnet-4-20250514", "last_id": "claude-sonnet-4-20250514"}).encode())
        if req.path.endswith("/v1/messages/count_tokens"):
            return MockResponse(body=json.dumps({"input_tokens": 42}).encode())
        if req.path.endswith("/v1/messages"):
            doc = req.json
            last = doc["messages"][-1]["content"] if doc.get("messages") else ""
            results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"] \
                if isinstance(last, list) else []
            if results:
                said = json.dumps(results[0].get("content"), ensure_ascii=False)
                msg = message(doc["model"], [{"type": "text", "text": f"The tool said {said}"}])
            elif doc.get("tools"):
                tool = doc["tools"][0]
                blocks = [{"type": "text", "text": "Let me check."},
                          {"type": "tool_use", "id": "toolu_mock1", "name": tool["name"],
                           "input": {"city": "Paris", "unit": "celsius"}}]
                msg = message(doc["model"], blocks, stop_reason="tool_use")
            else:
                msg = message(doc["model"], [{"type": "text", "text": self.reply_text(req)}])
            if isinstance(doc.get("tool_choice"), dict) and doc["tool_choice"].get("type") == "tool":
                msg = message(doc["model"], [{"type": "tool_use", "id": "toolu_forced",
                                              "name": doc["tool_choice"]["name"],
                                              "input": {"name": "Ada", "age": 36}}],
                              stop_reason="tool_use")
            if doc.get("stream"):
                return self.stream(message_events(msg))
            return MockResponse(body=json.dumps(msg).encode())
        return MockResponse(404, body=error_body("not_found_error", f"no route {req.path}"))

    def stream(self, events: list[bytes], delay_s: float | None = None) -> MockResponse:
        """An SSE response sending ``events`` one by one, ``delay_s`` apart."""
        delay = self.event_delay_s if delay_s is None else delay_s
        record = {"sent": 0, "client_gone": False, "done": False, "times": []}
        self.stream_log.append(record)

        def body():
            try:
                for i, ev in enumerate(events):
                    if i and delay:
                        gevent.sleep(delay)
                    record["times"].append(time.monotonic())
                    yield ev
                    record["sent"] += 1
                record["done"] = True
            except GeneratorExit:
                record["client_gone"] = True
                raise

        return MockResponse(headers=[("content-type", "text/event-stream"),
                                     ("cache-control", "no-cache")], body=body())

    # -- WSGI -------------------------------------------------------------------------------------
    def _wsgi(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read()
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        req = MockRequest(environ["REQUEST_METHOD"], environ["PATH_INFO"],
                          environ.get("QUERY_STRING", ""), headers, body)
        self.requests.append(req)
        resp = (self.handler or self.default)(req)
        if resp.delay_s:
            gevent.sleep(resp.delay_s)
        if isinstance(resp.body, bytes):
            start_response(f"{resp.status} X",
                           resp.headers + [("content-length", str(len(resp.body)))])
            return [resp.body]
        start_response(f"{resp.status} X", resp.headers)
        return resp.body


class ResourceAPI:
    """The upstream organisation's Files, Skills and Message Batches, in memory, as one mock
    upstream keeps them: every key sees every object, as on the real shared account. Install
    with ``mock.handler = ResourceAPI(mock)``; anything else falls to the mock's default."""

    def __init__(self, mock: MockUpstream):
        self.mock = mock
        self.objects: dict[str, dict] = {}  # id -> object
        self.contents: dict[str, bytes] = {}
        self.serial = 0
        self.batch_requests: dict[str, list] = {}  # batch id -> its requests
        self.result_usage = {"input_tokens": 25, "output_tokens": 12}  # of every result

    def _new(self, prefix: str, doc: dict) -> dict:
        self.serial += 1
        obj = {"id": f"{prefix}_{self.mock.name}{self.serial:04d}", **doc}
        self.objects[obj["id"]] = obj
        return obj

    @staticmethod
    def _json(doc: dict, status: int = 200) -> MockResponse:
        return MockResponse(status, body=json.dumps(doc).encode())

    def _list(self, prefix: str) -> MockResponse:
        data = [o for i, o in reversed(list(self.objects.items())) if i.startswith(prefix)]
        return self._json({"data": data, "has_more": False, "first_id": None, "last_id": None,
                           "next_page": None})

    def __call__(self, req: MockRequest) -> MockResponse:
        parts = req.path.split("/")[2:]  # after "/v1"
        if parts[:1] == ["files"]:
            return self._files(req, parts[1:])
        if parts[:1] == ["skills"]:
            return self._skills(req, parts[1:])
        if parts[:2] == ["messages", "batches"]:
            return self._batches(req, parts[2:])
        return self.mock.default(req)

    def _item(self, object_id: str) -> dict | None:
        return self.objects.get(object_id)

    def _missing(self, object_id: str) -> MockResponse:
        return MockResponse(404, body=error_body("not_found_error", f"{object_id} not found"))

    def _files(self, req: MockRequest, rest: list[str]) -> MockResponse:
        if not rest:
            if req.method == "POST":
                assert req.headers["content-type"].startswith("multipart/form-data")
                name = req.body.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
                payload = req.body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
                obj = self._new("file", {"type": "file", "filename": name,
                                         "mime_type": "text/plain", "size_bytes": len(payload),
                                         "created_at": "2026-12-06T00:00:00Z",
                                         "downloadable": True})
                self.contents[obj["id"]] = payload
                return self._json(obj)
            return self._list("file_")
        obj = self._item(rest[0])
        if obj is None:
            return self._missing(rest[0])
        if rest[1:] == ["content"]:
            return MockResponse(headers=[("content-type", "application/octet-stream")],
                                body=self.contents[rest[0]])
        if req.method == "DELETE":
            del self.objects[rest[0]]
            return self._json({"id": rest[0], "type": "file_deleted"})
        return self._json(obj)

    def _skills(self, req: MockRequest, rest: list[str]) -> MockResponse:
        if not rest:
            if req.method == "POST":
                return self._json(self._new("skill", {
                    "type": "skill", "display_title": "mine", "source": "custom",
                    "latest_version": "1", "created_at": "2026-12-06T00:00:00Z",
                    "updated_at": "2026-12-06T00:00:00Z"}))
            return self._list("skill_")
        obj = self._item(rest[0])
        if obj is None:
            return self._missing(rest[0])
        if req.method == "DELETE" and len(rest) == 1:
            del self.objects[rest[0]]
            return self._json({"id": rest[0], "type": "skill_deleted"})
        if rest[1:2] == ["versions"]:
            return self._json({"data": [{"type": "skill_version", "skill_id": rest[0],
                                         "version": "1"}], "has_more": False, "next_page": None})
        return self._json(obj)

    def _result(self, request: dict) -> dict:
        """One line of a batch's results: a request whose custom_id starts with "fail" errored."""
        if request["custom_id"].startswith("fail"):
            return {"custom_id": request["custom_id"], "result": {"type": "errored", "error": {
                "type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}}}
        return {"custom_id": request["custom_id"], "result": {"type": "succeeded", "message":
                message(request["params"]["model"], [{"type": "text", "text": "done"}],
                        **self.result_usage)}}

    def _batches(self, req: MockRequest, rest: list[str]) -> MockResponse:
        if not rest:
            if req.method == "POST":
                count = len(req.json["requests"])
                batch = self._json(self._new("msgbatch", {
                    "type": "message_batch", "processing_status": "in_progress",
                    "request_counts": {"processing": count, "succeeded": 0, "errored": 0,
                                       "canceled": 0, "expired": 0},
                    "created_at": "2026-12-06T00:00:00Z", "expires_at": "2026-12-07T00:00:00Z",
                    "ended_at": None, "cancel_initiated_at": None, "archived_at": None}))
                made = json.loads(batch.body)  # results at once: the mock works fast
                self.batch_requests[made["id"]] = req.json["requests"]
                self.objects[made["id"]]["results_url"] = \
                    f"{self.mock.url}/v1/messages/batches/{made['id']}/results"
                return self._json(self.objects[made["id"]])
            return self._list("msgbatch_")
        obj = self._item(rest[0])
        if obj is None:
            return self._missing(rest[0])
        if rest[1:] == ["results"]:
            return MockResponse(headers=[("content-type", "application/x-jsonl")],
                                body=b"".join(json.dumps(self._result(r)).encode() + b"\n"
                                              for r in self.batch_requests.get(rest[0], [])))
        if rest[1:] == ["cancel"]:
            obj["processing_status"] = "canceling"
        elif req.method == "DELETE":
            del self.objects[rest[0]]
            return self._json({"id": rest[0], "type": "message_batch_deleted"})
        return self._json(obj)


if __name__ == "__main__":
    # The deploy checks' upstream: python -m tests.mock_upstream NAME PORT (serves until killed).
    import sys
    mock = MockUpstream(sys.argv[1])
    mock.server.set_listener(("127.0.0.1", int(sys.argv[2])))
    mock.start()
    gevent.wait()
