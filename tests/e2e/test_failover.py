"""Upstream pool end to end: several mock upstreams behind one gateway, official SDK as client."""
import json
import time
from collections import Counter

import anthropic
import gevent
import pytest
import requests

from tests.helpers import TENANT_KEY, upstream_entry
from tests.e2e.servers import free_port
from tests.mock_upstream import MockResponse, error_body, message, message_events, sse

MODEL = "claude-sonnet-4-20250514"
ASK = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def sdk(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=TENANT_KEY, max_retries=0)


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def served_by(mocks) -> Counter:
    return Counter({m.name: sum(1 for r in m.requests if r.path == "/v1/messages") for m in mocks})


def test_weights_3_to_1_split_200_requests(make_mock, make_gateway):
    a, b = make_mock("a"), make_mock("b")
    gw = make_gateway([upstream_entry(a, weight=3), upstream_entry(b, weight=1)],
                      load_balancer={"strategy": "weighted_round_robin"})
    client = sdk(gw)
    for _ in range(200):
        client.messages.create(**ASK)
    counts = served_by([a, b])
    assert abs(counts["a"] - 150) <= 10 and abs(counts["b"] - 50) <= 10


def failing(kind):
    if kind == "500":
        return lambda req: MockResponse(500, body=error_body("api_error", "boom"))
    if kind == "529":
        return lambda req: MockResponse(529, body=error_body("overloaded_error", "Overloaded"))
    if kind == "401":
        return lambda req: MockResponse(401, body=error_body("authentication_error", "bad key"))
    if kind == "html502":
        return lambda req: MockResponse(502, headers=[("content-type", "text/html")],
                                        body=b"<html>Bad gateway (cloudflare)</html>")
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["500", "529", "401", "html502", "refused"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_upstream_never_surfaces(make_mock, make_gateway, kind, stream):
    good = make_mock("good")
    if kind == "refused":
        entries = [{"id": "bad", "url": dead_url(), "key": "k"}, upstream_entry(good)]
    else:
        bad = make_mock("bad")
        bad.handler = failing(kind)
        entries = [upstream_entry(bad), upstream_entry(good)]
    gw = make_gateway(entries, load_balancer={"unhealthyThreshold": 100})
    client = sdk(gw)
    for _ in range(6):
        if stream:
            with client.messages.stream(**ASK) as s:
                assert s.get_final_message().content[0].text == "Hello from good!"
        else:
            assert client.messages.create(**ASK).content[0].text == "Hello from good!"
    bad_state = gw.gateway.pool.by_id["bad"]
    assert bad_state.errors >= 3 and bad_state.in_flight == 0


def test_error_event_before_first_content_block_fails_over(make_mock, make_gateway):
    bad, good = make_mock("bad"), make_mock("good")
    start = message_events(message(MODEL, []))[0]
    overloaded = sse("error", {"type": "error",
                               "error": {"type": "overloaded_error", "message": "Overloaded"}})
    bad.handler = lambda req: bad.stream([start, overloaded])
    gw = make_gateway([upstream_entry(bad), upstream_entry(good)])
    for _ in range(4):
        with sdk(gw).messages.stream(**ASK) as s:
            assert s.get_final_message().content[0].text == "Hello from good!"
    assert gw.gateway.pool.by_id["bad"].errors >= 2


def test_failure_after_commit_gives_one_error_event(make_mock, make_gateway):
    only = make_mock("only")
    other = make_mock("other")
    events = message_events(message(MODEL, [{"type": "text", "text": "a long answer " * 5}]))

    def cut(req):
        def body():
            yield b"".join(events[:5])
            raise ConnectionResetError("upstream died")  # pywsgi drops the connection
        return MockResponse(headers=[("content-type", "text/event-stream")], body=body())

    only.handler = cut
    other.handler = cut
    gw = make_gateway([upstream_entry(only), upstream_entry(other)])
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={**ASK, "stream": True}, timeout=10)
    assert r.status_code == 200
    assert r.text.count("event: error") == 1
    assert "message_stop" not in r.text
    assert r.text.count("event: message_start") == 1  # no second attempt after the commit
    assert sum(len(m.requests) for m in (only, other)) == 1
    with pytest.raises(anthropic.APIError):
        with sdk(gw).messages.stream(**ASK) as s:
            s.get_final_message()


def test_all_upstreams_down_gives_one_clean_503(make_gateway):
    gw = make_gateway([{"id": f"u{i}", "url": dead_url() + "/p", "key": "sk-secret-upstream"}
                       for i in range(3)])
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as exc:
        sdk(gw).messages.create(**ASK)
    assert exc.value.status_code == 503
    assert exc.value.body["error"]["type"] == "overloaded_error"
    assert "127.0.0.1" not in str(exc.value.body) and "sk-secret" not in str(exc.value.body)
    assert time.monotonic() - started < 5
    assert sum(s.requests for s in gw.gateway.pool.states) == 3  # each tried once


def test_all_attempts_fail_keeps_last_status(make_mock, make_gateway):
    a, b = make_mock("a"), make_mock("b")
    a.handler = failing("529")
    b.handler = failing("529")
    gw = make_gateway([upstream_entry(a), upstream_entry(b)])
    with pytest.raises(anthropic.APIStatusError) as exc:
        sdk(gw).messages.create(**ASK)
    assert exc.value.status_code == 529
    assert exc.value.body == {"type": "error",
                              "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_upstream_credentials_rejected_everywhere_is_502(make_mock, make_gateway):
    a = make_mock("a")
    a.handler = failing("401")
    gw = make_gateway([upstream_entry(a)])
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    assert r.status_code == 502 and r.json()["error"]["type"] == "api_error"


def test_client_errors_are_not_retried(make_mock, make_gateway):
    a, b = make_mock("a"), make_mock("b")
    for m in (a, b):
        m.handler = lambda req: MockResponse(400, body=error_body("invalid_request_error", "bad"))
    gw = make_gateway([upstream_entry(a), upstream_entry(b)])
    with pytest.raises(anthropic.BadRequestError):
        sdk(gw).messages.create(**ASK)
    assert len(a.requests) + len(b.requests) == 1


def test_failover_disabled_means_one_attempt(make_mock, make_gateway):
    a, b = make_mock("a"), make_mock("b")
    a.handler = failing("500")
    gw = make_gateway([upstream_entry(a), upstream_entry(b)],
                      load_balancer={"failoverEnabled": False})
    with pytest.raises(anthropic.InternalServerError):
        sdk(gw).messages.create(**ASK)
    assert len(b.requests) == 0


def test_read_timeout_before_headers_fails_over(make_mock, make_gateway):
    slow, good = make_mock("slow"), make_mock("good")
    slow.handler = lambda req: MockResponse(delay_s=3, body=b"{}")
    gw = make_gateway([upstream_entry(slow, timeout=300), upstream_entry(good)])
    started = time.monotonic()
    assert sdk(gw).messages.create(**ASK).content[0].text == "Hello from good!"
    assert time.monotonic() - started < 2


def test_cooldown_and_recovery(make_mock, make_gateway):
    a, b = make_mock("a"), make_mock("b")
    a.handler = lambda req: MockResponse(
        429, headers=[("content-type", "application/json"), ("retry-after", "1")],
        body=error_body("rate_limit_error", "slow down"))
    gw = make_gateway([upstream_entry(a), upstream_entry(b)])
    client = sdk(gw)
    client.messages.create(**ASK)
    client.messages.create(**ASK)
    hits = len(a.requests)
    assert hits == 1  # cooled down for retry-after: skipped
    snap = {u["id"]: u for u in requests.get(gw.url + "/health").json()["upstreams"]}
    assert snap["a"]["healthy"] is False and snap["a"]["reason"] == "HTTP 429"
    a.handler = None  # recovers
    gevent.sleep(1.1)
    for _ in range(4):
        client.messages.create(**ASK)
    assert len(a.requests) - hits == 2  # back in rotation, half of the traffic again
    assert requests.get(gw.url + "/health").json()["status"] == "ok"


def test_active_probe_marks_down_and_up(make_mock, make_gateway):
    a, b = make_mock("a"), make_mock("b")
    broken = {"on": True}

    def handler(req):
        if req.path == "/v1/models" and broken["on"]:
            return MockResponse(401, body=error_body("authentication_error", "invalid x-api-key"))
        return a.default(req)

    a.handler = handler
    gw = make_gateway([upstream_entry(a), upstream_entry(b)],
                      load_balancer={"healthCheckEnabled": True, "healthCheck": {"interval": 0.1}})

    def health():
        return {u["id"]: u for u in requests.get(gw.url + "/health").json()["upstreams"]}

    deadline = time.monotonic() + 3
    while health()["a"]["healthy"] and time.monotonic() < deadline:
        gevent.sleep(0.05)
    h = health()
    assert h["a"]["healthy"] is False and h["a"]["reason"] == "credentials rejected (HTTP 401)"
    assert requests.get(gw.url + "/health").json()["status"] == "degraded"
    probe = [r for r in a.requests if r.path == "/v1/models"][-1]
    assert probe.headers["x-api-key"] == "sk-ant-upstream-secret-key-abcdef"
    before = len([r for r in a.requests if r.path == "/v1/messages"])
    for _ in range(4):
        sdk(gw).messages.create(**ASK)
    assert len([r for r in a.requests if r.path == "/v1/messages"]) == before  # skipped while down
    broken["on"] = False
    deadline = time.monotonic() + 3
    while not health()["a"]["healthy"] and time.monotonic() < deadline:
        gevent.sleep(0.05)
    assert health()["a"]["healthy"] is True


def test_sticky_sessions_keep_a_conversation_on_one_upstream(make_mock, make_gateway):
    mocks = [make_mock(n) for n in "abc"]
    gw = make_gateway([upstream_entry(m) for m in mocks],
                      load_balancer={"strategy": "weighted_round_robin"})
    client = sdk(gw)
    user_id = json.dumps({"device_id": "d1", "account_uuid": "", "session_id": "sess-42"})
    for i in range(20):
        client.messages.create(**ASK, metadata={"user_id": user_id})
        client.messages.create(**ASK)  # other traffic keeps rotating
    sticky_hits = [m.name for m in mocks for r in m.requests
                   if r.json and r.json.get("metadata", {}).get("user_id") == user_id]
    assert len(sticky_hits) == 20 and len(set(sticky_hits)) == 1
    other = Counter(m.name for m in mocks for r in m.requests
                    if r.json and "metadata" not in r.json)
    assert set(other) == {"a", "b", "c"} and max(other.values()) - min(other.values()) <= 1
    # the same conversation announced by Claude Code's header sticks too
    for _ in range(5):
        client.messages.create(**ASK, extra_headers={"x-claude-code-session-id": "cc-1"})
    cc = [m.name for m in mocks for r in m.requests if r.headers.get("x-claude-code-session-id")]
    assert len(set(cc)) == 1


def test_models_and_model_map(make_mock, make_gateway):
    sonnet_only, renamer = make_mock("sonnet-only"), make_mock("renamer")
    gw = make_gateway([upstream_entry(sonnet_only, models=["*sonnet*"]),
                       upstream_entry(renamer, modelMap={MODEL: "claude-sonnet-4"})])
    client = sdk(gw)
    for _ in range(4):
        client.messages.create(**{**ASK, "model": "claude-3-5-haiku-20241022"})
    assert len(sonnet_only.requests) == 0 and len(renamer.requests) == 4
    for _ in range(2):
        client.messages.create(**ASK)
    assert [r.json["model"] for r in renamer.requests[4:]] == ["claude-sonnet-4"]
    assert sonnet_only.requests[-1].json["model"] == MODEL


def test_no_upstream_serves_the_model(make_mock, make_gateway):
    a = make_mock("a")
    gw = make_gateway([upstream_entry(a, models=["*sonnet*"])])
    with pytest.raises(anthropic.NotFoundError):
        sdk(gw).messages.create(**{**ASK, "model": "claude-opus-4"})
    assert a.requests == []
