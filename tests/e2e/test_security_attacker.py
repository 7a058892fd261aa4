"""An attacker holding a tenant key: no unmetered or unlimited path to the upstream (issue 20).

Raw sockets send exactly the bytes an attacker would; the mock upstream records what arrives.
"""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import gevent
import pytest
import requests

from tests.helpers import OTHER_KEY, TENANT_KEY, upstream_entry, write_config
from tests.e2e.servers import free_port, wait_up
from tests.mock_upstream import MockResponse, message, message_events

OPUS = "claude-opus-4-1-20250805"
HAIKU = "claude-3-5-haiku-20241022"
ASK = {"model": HAIKU, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
BATCHES_KEY = "sk-ccg-test-batches-key-5555555"
ROOT = Path(__file__).resolve().parents[2]


def raw_exchange(gw, data: bytes, timeout: float = 3.0) -> bytes:
    """Send ``data`` on a fresh connection; everything the gateway sent until it closed."""
    s = socket.create_connection(("127.0.0.1", gw.server.server_port))
    s.settimeout(timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        out += b"<still open>"
    finally:
        s.close()
    return out


def post(path: str, body: bytes, key: str = TENANT_KEY, method: str = "POST",
         content_type: str | None = "application/json") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\nconnection: close\r\n"
    if content_type:
        head += f"content-type: {content_type}\r\n"
    return head.encode() + f"content-length: {len(body)}\r\n\r\n".encode() + body


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def records(gw, tenant="alice") -> list[dict]:
    root = Path(gw.gateway.data_dir) / "usage" / tenant
    return [json.loads(line) for f in sorted(root.glob("*/*.json"))
            for line in f.read_text().splitlines() if line]


def any_path_answers_a_message(req):
    """A mirror that routes loosely: every path and method gets a generated message."""
    doc = json.loads(req.body) if req.body.strip().startswith(b"{") else {}
    msg = message(doc.get("model", HAIKU), [{"type": "text", "text": "served"}],
                  input_tokens=1000, output_tokens=1000)
    if doc.get("stream"):
        return MockResponse(headers=[("content-type", "text/event-stream")],
                            body=iter(message_events(msg)))
    return MockResponse(body=json.dumps(msg).encode())


# Paths the operator opened (allowPaths): what comes back is still metered and limited there.
OPENED = ["/v1/something-else", "/v1/other", "/v1/anything"]
TENANTS = [
    {"id": "alice", "key": TENANT_KEY, "allowedModels": ["*"],
     "limits": {"daily": {"maxUSD": 0.002}}, "allowPaths": OPENED},
    {"id": "bob", "key": OTHER_KEY, "allowedModels": ["*haiku*"], "allowPaths": OPENED},
    {"id": "dave", "key": BATCHES_KEY, "allowedModels": ["*haiku*"], "allowBatches": True},
]


@pytest.fixture
def loose(make_gateway, upstream):
    upstream.handler = any_path_answers_a_message
    return make_gateway([upstream_entry(upstream)], tenants=TENANTS)


BODY = json.dumps(ASK).encode()


@pytest.mark.parametrize("path", [
    "/anthropic/v1/messages%3F", "/anthropic/v1/messages%23", "/anthropic/v1/messages;x",
    "/anthropic/v1/messages%3Bx", "/anthropic/v1/messages%20", "/anthropic/v1/messages%00",
    "/anthropic/v1/messages%09", "/anthropic/v1/x/%252e%252e/messages",
    "/anthropic/v1/x/%2e%2e/messages", "/anthropic/v1/x/../messages", "/anthropic/v1/./messages",
    "/anthropic/v1//messages", "/anthropic/v1/messages/", "/anthropic/v1/messages%2F",
    "/anthropic/v1/messages%252F", "/anthropic/v1/messages%C2%A0",
    "/anthropic/v1/mess%E2%80%8Bages",
])
def test_ambiguous_paths_are_refused_and_nothing_goes_upstream(loose, upstream, path):
    raw = raw_exchange(loose, post(path, BODY, key=OTHER_KEY))
    assert status_of(raw) == 404, raw[:300]
    assert b'"not_found_error"' in raw
    assert upstream.requests == []


def test_encoded_letters_decode_to_the_path_that_is_checked_and_metered(loose, upstream):
    raw = raw_exchange(loose, post("/anthropic/v1/m%65ssages", BODY, key=OTHER_KEY))
    assert status_of(raw) == 200
    assert upstream.requests[0].path == "/v1/messages"
    assert len(records(loose, "bob")) == 1


@pytest.mark.parametrize("path", ["/anthropic/V1/Messages", "/anthropic/v1/MESSAGES",
                                  "/anthropic/v1/something-else"])
def test_any_path_that_generates_tokens_is_metered(loose, upstream, path):
    raw = raw_exchange(loose, post(path, BODY, key=OTHER_KEY))
    assert status_of(raw) == 200, raw[:300]
    recs = records(loose, "bob")
    assert len(recs) == 1 and recs[0]["outputTokens"] == 1000 and recs[0]["totalCost"] > 0
    assert recs[0]["model"] == HAIKU


def test_stream_on_an_unusual_path_is_metered(loose, upstream):
    raw = raw_exchange(loose, post("/anthropic/v1/other", json.dumps({**ASK, "stream": True})
                                   .encode(), key=OTHER_KEY))
    assert status_of(raw) == 200 and b"message_stop" in raw
    assert records(loose, "bob")[0]["outputTokens"] == 1000


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE", "PATCH"])
def test_messages_take_post_only(loose, upstream, method):
    raw = raw_exchange(loose, post("/anthropic/v1/messages", BODY, key=OTHER_KEY, method=method))
    assert status_of(raw) == 405 and b"invalid_request_error" in raw
    assert upstream.requests == []


@pytest.mark.parametrize("content_type", ["text/plain", None, "text/json",
                                          "application/x-www-form-urlencoded"])
def test_model_checked_whatever_the_content_type(loose, upstream, content_type):
    opus = json.dumps({**ASK, "model": OPUS}).encode()
    raw = raw_exchange(loose, post("/anthropic/v1/messages", opus, key=OTHER_KEY,
                                   content_type=content_type))
    assert status_of(raw) == 403 and b"permission_error" in raw
    batch = json.dumps({"requests": [{"custom_id": "a", "params": {**ASK, "model": OPUS}}]})
    raw = raw_exchange(loose, post("/anthropic/v1/messages/batches", batch.encode(),
                                   key=BATCHES_KEY, content_type=content_type))
    assert status_of(raw) == 403 and b"not allowed for this key" in raw
    assert upstream.requests == []
    ok = raw_exchange(loose, post("/anthropic/v1/messages", BODY, key=OTHER_KEY,
                                  content_type=content_type))
    assert status_of(ok) == 200
    assert len(records(loose, "bob")) == 1


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"a string"', b"\xff\xfe",
                                  b'{"model": ["claude-opus-4"], "max_tokens": 1}',
                                  b'{"max_tokens": 1, "messages": []}'])
def test_bodies_that_are_not_a_checkable_object_are_refused(loose, upstream, body):
    for path in ("/anthropic/v1/messages", "/anthropic/v1/anything"):
        raw = raw_exchange(loose, post(path, body, key=OTHER_KEY, content_type="text/plain"))
        if path.endswith("anything") and body.startswith(b'{"max_tokens"'):
            continue  # a JSON object naming no model, on a path that needs none: forwarded
        assert status_of(raw) == 400 and b"invalid_request_error" in raw, (path, raw[:300])
    assert all(not r.path.endswith("/v1/messages") for r in upstream.requests)


def test_batches_need_allow_batches(loose, upstream):
    batch = json.dumps({"requests": [{"custom_id": "a", "params": ASK}]}).encode()
    for method, body in (("POST", batch), ("GET", b"")):
        raw = raw_exchange(loose, post("/anthropic/v1/messages/batches", body, key=OTHER_KEY,
                                       method=method))
        assert status_of(raw) == 403 and b"allowBatches" in raw
    assert upstream.requests == []
    raw = raw_exchange(loose, post("/anthropic/v1/messages/batches", batch, key=BATCHES_KEY))
    assert status_of(raw) == 200 and len(upstream.requests) == 1


def test_over_the_spend_limit_every_model_bearing_path_is_refused(loose, upstream):
    client = anthropic.Anthropic(base_url=loose.url + "/anthropic", api_key=TENANT_KEY,
                                 max_retries=0)
    client.messages.create(**ASK)  # 1000 + 1000 haiku tokens: over the $0.002 daily limit
    sent = len(upstream.requests)
    for path in ("/anthropic/v1/messages", "/anthropic/V1/Messages", "/anthropic/v1/complete",
                 "/anthropic/v1/other", "/anthropic/v1/messages/batches"):
        raw = raw_exchange(loose, post(path, BODY, content_type="text/plain"))
        assert status_of(raw) in (429, 403), (path, raw[:200])
        assert b"spending limit" in raw or b"allowBatches" in raw
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**ASK)
    assert len(upstream.requests) == sent
    # Free requests still work: counting tokens and listing models cost nothing.
    assert status_of(raw_exchange(loose, post("/anthropic/v1/messages/count_tokens", BODY))) == 200
    assert status_of(raw_exchange(loose, post("/anthropic/v1/models", b"", method="GET"))) == 200


def test_rpm_and_concurrency_apply_to_every_path(make_gateway, upstream):
    upstream.handler = any_path_answers_a_message
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"rpm": 2}, "allowFiles": True}])
    for path in ("/anthropic/v1/models", "/anthropic/v1/files"):
        raw_exchange(gw, post(path, b"", method="GET"))
    raw = raw_exchange(gw, post("/anthropic/v1/models", b"", method="GET"))
    assert status_of(raw) == 429 and b"rate limit of 2 requests per minute" in raw
    r = requests.get(gw.url + "/openai/v1/models", headers={"authorization": f"Bearer {TENANT_KEY}"})
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"


def test_chunked_body_over_the_limit_is_refused_whole(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={"server": {"maxBodyMB": 1}})
    big = json.dumps({**ASK, "pad": "x" * (3 * 1024 * 1024)}).encode()
    head = (f"POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {TENANT_KEY}\r\n"
            "transfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n").encode()
    chunks = b"".join(f"{len(big[i:i + 65536]):x}\r\n".encode() + big[i:i + 65536] + b"\r\n"
                      for i in range(0, len(big), 65536)) + b"0\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", gw.server.server_port))
    s.settimeout(5)
    try:
        s.sendall(head + chunks)
    except OSError:
        pass  # the gateway may close before the whole body is in
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except OSError:
        pass
    s.close()
    assert status_of(data) == 413 and b"request_too_large" in data
    assert upstream.requests == []


# -- strict HTTP framing ---------------------------------------------------------------------------
SMUGGLED = post("/anthropic/v1/messages", BODY)
FRAMING_CASES = {
    "te and cl": b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    "xchunked and cl": b"Transfer-Encoding: xchunked\r\nContent-Length: 0\r\n",
    "te not chunked": b"Transfer-Encoding: gzip\r\n",
    "two te": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "folded te": b"transfer-encoding:\r\n chunked\r\n",
    "bare cr in value": b"user-agent: ua\rX: y\r\n",
    "two lengths": b"Content-Length: 0\r\nContent-Length: 5\r\n",
    "signed length": b"content-length: +0\r\n",
    "list length": b"content-length: 0, 5\r\n",
    "space before colon": b"content-length : 0\r\n",
    "nul in value": b"x-a: a\x00b\r\n",
}


@pytest.mark.parametrize("case", sorted(FRAMING_CASES))
def test_ambiguous_framing_is_refused_and_closed(gw, upstream, case):
    head = (b"POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: "
            + TENANT_KEY.encode() + b"\r\n" + FRAMING_CASES[case] + b"\r\n")
    raw = raw_exchange(gw, head + b"0\r\n\r\n" + SMUGGLED)
    assert raw.startswith(b"HTTP/1.1 400 "), raw[:200]
    assert b"<still open>" not in raw and raw.count(b"HTTP/1.1") == 1
    gevent.sleep(0.2)
    assert upstream.requests == []


@pytest.mark.parametrize("request_bytes", [
    b"POST /anthropic/v1/messages HTTP/1.1\nhost: x\ncontent-length: 0\n\n",
    b"POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\ncontent-length: 0\r\n\r\n",
    b"POST  /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET /anthropic/v1/models\r\n\r\n",
    b"GET /anthropic/v1/models HTTP/2.0\r\n\r\n",
])
def test_bare_lf_and_odd_request_lines_are_refused(gw, upstream, request_bytes):
    raw = raw_exchange(gw, request_bytes + SMUGGLED)
    assert raw.startswith(b"HTTP/1.1 400 ") and raw.count(b"HTTP/1.1") == 1, raw[:200]
    assert upstream.requests == []


def test_clean_pipelined_requests_still_work(gw, upstream):
    keep = SMUGGLED.replace(b"connection: close\r\n", b"")
    raw = raw_exchange(gw, keep + SMUGGLED)
    assert raw.count(b"HTTP/1.1 200 ") == 2 and len(upstream.requests) == 2


def test_malformed_requests_leave_no_secret_on_stdout_or_stderr(tmp_path):
    """A real ``python app.py``: a key in a broken request line must not reach the console."""
    port = free_port()
    config = write_config(tmp_path / "config", [{"id": "u", "url": "http://127.0.0.1:9",
                                                 "key": "sk-ant-upstream-console-secret-1"}],
                          server={"server": {"port": port},
                                  "admin": {"username": "admin", "password": "admin-pw-123"}})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config-dir", str(config),
                             "--data-dir", str(tmp_path / "data")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_up(f"http://127.0.0.1:{port}/health")
        basic = "Basic YWRtaW46YWRtaW4tcHctMTIz"  # admin:admin-pw-123
        for data in (f"x-api-key: {TENANT_KEY}\r\n\r\n".encode(),
                     f"GET /x {TENANT_KEY}\r\n\r\n".encode(),
                     f"authorization: {basic}\r\n\r\n".encode(),
                     f"POST /anthropic/v1/messages HTTP/1.1\r\nx-api-key: {TENANT_KEY}\r\n"
                     f"content-length: +3\r\n\r\nabc".encode(),
                     f"GET /dashboard HTTP/1.1\r\nauthorization: {basic}\r\n folded\r\n\r\n".encode(),
                     ("G" * 9000 + TENANT_KEY).encode() + b"\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(data)
            s.settimeout(3)
            try:
                s.recv(1024)
            except OSError:
                pass
            s.close()
        time.sleep(0.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    console = out + err
    combined = (tmp_path / "data" / "logs" / "combined.log").read_text()
    assert "refused a malformed request" in combined
    for secret in (TENANT_KEY, "YWRtaW46YWRtaW4tcHctMTIz", "admin-pw-123",
                   "sk-ant-upstream-console-secret-1"):
        assert secret.encode() not in console, console.decode(errors="replace")[-2000:]
    for log in (tmp_path / "data" / "logs").glob("*.log"):
        assert TENANT_KEY not in log.read_text()


BAD_CHUNKS = {"not hex": b"zz\r\n{}\r\n0\r\n\r\n", "no crlf after data": b"2\r\n{}XX0\r\n\r\n",
              "size then junk": b"2 x\r\n{}\r\n0\r\n\r\n"}


@pytest.mark.parametrize("path", ["/anthropic/v1/messages", "/openai/v1/chat/completions",
                                  "/usage", "/admin/api/tenants"])
@pytest.mark.parametrize("case", sorted(BAD_CHUNKS))
def test_a_malformed_chunked_body_gets_400_and_nothing_behind_it_is_answered(gw, upstream, path,
                                                                               case):
    """Issue 32, item 5: behind a proxy that forwards chunked bytes as they are, the bytes after
    a bad chunk size were read as a new request (a smuggled GET /admin/... was processed)."""
    head = (f"POST {path} HTTP/1.1\r\nhost: x\r\nx-api-key: {TENANT_KEY}\r\n"
            f"authorization: Bearer {TENANT_KEY}\r\ncontent-type: application/json\r\n"
            f"transfer-encoding: chunked\r\n\r\n").encode()
    smuggled = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
    raw = raw_exchange(gw, head + BAD_CHUNKS[case] + smuggled)
    assert raw.count(b"HTTP/1.1 ") == 1 and b"<still open>" not in raw, raw[:300]
    # a path that reads the body says why; /usage with its key in the headers reads no body
    # and admin refuses the tenant key before it: answered, then closed all the same
    expected = {"/usage": b"HTTP/1.1 200 ", "/admin/api/tenants": b"HTTP/1.1 401 "}
    assert raw.startswith(expected.get(path, b"HTTP/1.1 400 ")), raw[:300]
    assert upstream.requests == []
