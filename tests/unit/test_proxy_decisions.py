"""The proxy's decisions without sockets: fail over or not, commit a stream or hold it, what a
client may see of an upstream's secrets, how big one event may grow."""
import json

import pytest

from ccgate.core.errors import upstream_failure_answer
from ccgate.proxy.attempt import COMMIT_BYTES, COMMIT_SECONDS, CommitGate, Failed, judge_status
from ccgate.proxy.headers import secrets_of, to_client, to_upstream
from ccgate.core.redact import StreamRedactor, cover, replace_secrets
from ccgate.config.settings import UpstreamConfig
from ccgate.core.sse import MAX_EVENT_BYTES, EventTooLarge, SSEParser
from tests.helpers import UPSTREAM_KEY
from tests.mock_wire import message, message_events, sse

UP = UpstreamConfig(id="m", name="m", url="https://mirror.example/api", key=UPSTREAM_KEY,
                    weight=1, enabled=True, auth="auto", read_timeout_s=600)


@pytest.mark.parametrize("status,fails", [(200, False), (400, False), (404, False), (401, True),
                                          (403, True), (429, True), (500, True), (529, True)])
def test_which_statuses_fail_over(status, fails):
    verdict = judge_status(status, {"retry-after": "7"}, b"{}")
    assert (verdict is not None) == fails
    if fails:
        assert verdict.retry_after == 7.0 and verdict.status == status
        assert ("credentials rejected" in verdict.reason) == (status in (401, 403))


def test_gate_commits_at_the_first_content_block_split_anywhere():
    stream = b"".join(message_events(message("m", [{"type": "text", "text": "hi"}])))
    start = stream.index(b"event: content_block_start")
    for cut in range(1, start + 30):
        gate = CommitGate(started=0.0)
        committed = gate.feed(stream[:cut], now=0.0) or gate.feed(stream[cut:], now=0.0)
        assert committed and b"".join(gate.held) == stream


def test_gate_fails_over_on_an_early_error_event_with_its_status():
    gate = CommitGate(started=0.0)
    first = message_events(message("m", []))[0]
    assert gate.feed(first, now=0.0) is False
    with pytest.raises(Failed) as e:
        gate.feed(sse("error", {"type": "error", "error": {"type": "overloaded_error",
                                                           "message": "busy"}}), now=0.0)
    assert e.value.status == 529


def test_gate_commits_after_enough_bytes_or_time():
    gate = CommitGate(started=0.0)
    assert gate.feed(b": ping\n\n", now=0.0) is False
    assert gate.feed(b": pad\n\n", now=COMMIT_SECONDS) is True
    gate = CommitGate(started=0.0)
    assert gate.feed(b": " + b"x" * COMMIT_BYTES + b"\n\n", now=0.0) is True


def test_headers_each_way():
    out = to_upstream([("X-Api-Key", "tenant"), ("Cookie", "c"), ("X-Forwarded-For", "1.2.3.4"),
                       ("CF-Connecting-IP", "1.2.3.4"), ("anthropic-beta", "b")], UP)
    assert out["x-api-key"] == UPSTREAM_KEY and out["anthropic-beta"] == "b"
    assert "cookie" not in out and "x-forwarded-for" not in out and "cf-connecting-ip" not in out
    assert out["anthropic-version"] == "2023-06-01" and out["accept-encoding"] == "identity"
    back = to_client({"Location": UP.url + "/x", "Set-Cookie": "s", "Content-Length": "5"},
                     False, secrets_of(UP, error=True))
    assert ("Content-Length", "5") in back and all(n != "Set-Cookie" for n, _ in back)
    assert "mirror.example" not in json.dumps(back)


def test_all_failed_answer_never_blames_the_tenant_for_the_gateway_key():
    status, body = upstream_failure_answer(401, b"{}", str)
    assert status == 502 and b"credentials" in body
    status, body = upstream_failure_answer(None, b"", str)
    assert status == 503 and b"overloaded_error" in body
    status, body = upstream_failure_answer(529, b'{"type":"error","error":{"type":'
                                           b'"overloaded_error","message":"key sk-x"}}',
                                           lambda t: t.replace("sk-x", "[upstream]"))
    assert status == 529 and b"[upstream]" in body and b"sk-x" not in body


def test_redactor_replaces_secrets_split_anywhere():
    secrets = (UPSTREAM_KEY, "http://mirror.example:8080")
    text = f'{{"error": "key {UPSTREAM_KEY} refused by http://mirror.example:8080/v1"}}\n\n'.encode()
    for cut in range(len(text) + 1):
        r = StreamRedactor(secrets)
        out = r.feed(text[:cut]) + r.feed(text[cut:]) + r.flush()
        assert UPSTREAM_KEY.encode() not in out and b"mirror.example" not in out
        assert b"refused by" in out and len(out) == len(text)  # same length: Content-Length holds
    r = StreamRedactor(secrets)
    assert r.feed(b"event: ping\ndata: {}\n\n") == b"event: ping\ndata: {}\n\n"  # nothing held
    assert cover("abc") == "***" and cover(UPSTREAM_KEY).startswith("[upstream]")
    assert replace_secrets("x sk-ant-upstream-secret-key-abcdef y", secrets).startswith("x [upstream]")


def test_sse_parser_caps_one_event_and_recovers():
    p = SSEParser()
    piece = b"x" * 65536
    with pytest.raises(EventTooLarge):
        for _ in range(MAX_EVENT_BYTES // len(piece) + 2):
            p.feed(piece)
    assert p.feed(b"\n\nevent: ping\ndata: {}\n\n")[-1].event == "ping"
    with pytest.raises(EventTooLarge):
        for _ in range(MAX_EVENT_BYTES // len(piece) + 2):
            p.feed(b"data: " + piece + b"\n")  # many data lines, never a blank one
    assert [e.event for e in p.feed(b"event: a\ndata: 1\n\n")] == ["a"]


def test_connection_named_and_override_headers_are_not_forwarded():
    """Issue 32: headers the client names in Connection are hop-by-hop; method and URL
    overrides would make a mirror's proxy read another request than the one checked."""
    from ccgate.config.settings import UpstreamConfig
    from ccgate.proxy.headers import to_upstream
    up = UpstreamConfig(id="u", name="u", url="https://m.example", key="sk-ant-key-0000000001",
                        weight=1, enabled=True, auth="x-api-key", read_timeout_s=600)
    sent = to_upstream([("connection", "keep-alive, X-Secret-Hop, anthropic-beta"),
                        ("x-secret-hop", "1"), ("anthropic-beta", "files-api-2025-04-14"),
                        ("x-http-method-override", "DELETE"), ("x-original-url", "/v1/x"),
                        ("user-agent", "claude-cli")], up)
    assert "x-secret-hop" not in sent and "x-http-method-override" not in sent
    assert "x-original-url" not in sent and "connection" not in sent
    assert sent["anthropic-beta"] == "files-api-2025-04-14" and sent["user-agent"] == "claude-cli"
