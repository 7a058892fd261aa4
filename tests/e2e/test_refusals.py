"""Issue 32, in part: refusals that tell clients not to retry, answers browsers do not sniff, log
files other users cannot read."""
import json
import os

import anthropic
import openai
import pytest
import requests

from tests.e2e.servers import wait_until
from tests.helpers import DISABLED_KEY, TENANT_KEY

ASK = {"model": "claude-sonnet-4-20250514", "max_tokens": 5,
       "messages": [{"role": "user", "content": "hi"}]}


def access(gw) -> list[dict]:
    path = gw.gateway.data_dir / "logs" / "access.log"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("key,status", [("sk-ccg-wrong-key-000000000000", 401),
                                        (DISABLED_KEY, 403)])
def test_a_wrong_or_disabled_key_is_not_retried_by_the_sdks(gw, key, status):
    with pytest.raises(anthropic.APIStatusError) as e:
        anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=key).messages.create(**ASK)
    assert e.value.status_code == status
    assert e.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(openai.APIStatusError):
        openai.OpenAI(base_url=gw.url + "/openai/v1", api_key=key).chat.completions.create(
            model="claude-sonnet-4-20250514", messages=ASK["messages"])
    wait_until(lambda: len(access(gw)) >= 2)
    assert [line["status"] for line in access(gw)] == [status, status]  # one try each


def test_answers_carry_nosniff_and_log_files_are_private(gw):
    for r in (requests.get(gw.url + "/health"),
              requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                            json=ASK),
              requests.get(gw.url + "/anthropic/v1/nothing", headers={"x-api-key": TENANT_KEY})):
        assert r.headers["x-content-type-options"] == "nosniff"
    logs = gw.gateway.data_dir / "logs"
    wait_until(lambda: (logs / "access.log").exists())
    for name in ("access.log", "combined.log", "error.log"):
        if (logs / name).exists():
            assert os.stat(logs / name).st_mode & 0o077 == 0, name


@pytest.mark.parametrize("head,status", [
    (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\n\r\n", 400),
    (b"GET /health HTTP/1.0\r\n\r\n", 200),  # HTTP/1.0 needs none
    (b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n", 200),
])
def test_host_must_be_one_on_http_1_1(gw, head, status):
    import socket
    s = socket.create_connection(("127.0.0.1", gw.server.server_port))
    s.settimeout(3)
    s.sendall(head + b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")  # a pipelined second request
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
            if status == 200:
                break
    except socket.timeout:
        pass
    s.close()
    assert data.startswith(b"HTTP/1.1 %d" % status) or data.startswith(b"HTTP/1.0 %d" % status)
    if status == 400:
        assert data.count(b"HTTP/1.") == 1  # nothing behind the refused head is answered


def test_a_record_stays_small_whatever_the_headers(gw, upstream):
    """Issue 32: a long user agent and session id made a record of 30 KB per refused request."""
    from pathlib import Path
    huge = "x" * 8000  # each header line may hold up to 8 KB
    for status in (200, 529):
        if status == 529:
            from tests.mock_upstream import MockResponse, error_body
            upstream.handler = lambda req: MockResponse(529, body=error_body("overloaded_error", "busy"))
        requests.post(gw.url + "/anthropic/v1/messages",
                      headers={"x-api-key": TENANT_KEY, "user-agent": huge,
                               "x-claude-code-session-id": huge}, json=ASK)
    lines = [line for f in (Path(gw.gateway.data_dir) / "usage").rglob("*.json")
             for line in f.read_bytes().splitlines()]
    assert len(lines) == 2 and all(len(line) < 4096 for line in lines)
    assert json.loads(lines[0])["userAgent"].endswith("…[cut]")


def test_keyless_usage_posts_that_stall_their_body_are_closed_at_the_body_timeout(make_gateway,
                                                                                 upstream):
    """Issue 32: POST /usage read its body through werkzeug, without the body timeout: a
    connection sending a length and one byte was still open at 50 s."""
    import socket
    import time
    from tests.helpers import upstream_entry
    gw = make_gateway([upstream_entry(upstream)], server={"server": {"bodyTimeout": 1000}})
    socks = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", gw.server.server_port))
        s.sendall(b"POST /usage HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                  b"content-length: 100\r\n\r\n{")
        s.settimeout(5)
        socks.append(s)
    started = time.monotonic()
    for s in socks:
        answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408") and s.recv(65536) == b""  # closed
        s.close()
    assert time.monotonic() - started < 4
    ok = requests.post(gw.url + "/usage", json={"type": "tenant", "apiKey": TENANT_KEY})
    assert ok.status_code == 200 and ok.json()["tenant"]["id"] == "alice"
