"""/anthropic pass-through, end to end: official SDK -> gateway -> mock upstream, all on loopback."""
import json
import socket
import time

import anthropic
import gevent
import pytest
import requests

from tests.helpers import DISABLED_KEY, OTHER_KEY, TENANT_KEY, UPSTREAM_KEY, upstream_entry
from tests.mock_upstream import MockResponse, error_body, message, message_events

MODEL = "claude-sonnet-4-20250514"


def sdk(gw, key=TENANT_KEY, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=key, max_retries=0, **kw)


def test_non_streaming_text(gw, upstream):
    msg = sdk(gw).messages.create(model=MODEL, max_tokens=100,
                                  messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == "Hello from primary!"
    assert msg.usage.input_tokens == 25
    assert upstream.requests[-1].path == "/v1/messages"


def test_streaming_text_final_message_equals_upstream(gw, upstream):
    with sdk(gw).messages.stream(model=MODEL, max_tokens=100,
                                 messages=[{"role": "user", "content": "hi"}]) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "Hello from primary!"
    expected = message(MODEL, [{"type": "text", "text": "Hello from primary!"}])
    assert final.model_dump(exclude_none=True)["content"] == expected["content"]
    assert final.usage.output_tokens == 12 and final.usage.input_tokens == 25
    assert final.stop_reason == "end_turn"


TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def test_streaming_tool_use(gw):
    with sdk(gw).messages.stream(model=MODEL, max_tokens=100, tools=TOOLS,
                                 messages=[{"role": "user", "content": "weather?"}]) as stream:
        final = stream.get_final_message()
    tool = final.content[1]
    assert tool.type == "tool_use" and tool.name == "get_weather"
    assert tool.input == {"city": "Paris", "unit": "celsius"}
    assert final.stop_reason == "tool_use"


def test_non_streaming_tool_use(gw):
    msg = sdk(gw).messages.create(model=MODEL, max_tokens=100, tools=TOOLS,
                                  messages=[{"role": "user", "content": "weather?"}])
    assert msg.content[1].input == {"city": "Paris", "unit": "celsius"}


def test_count_tokens_and_models(gw, upstream):
    client = sdk(gw)
    count = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert count.input_tokens == 42
    assert upstream.requests[-1].path == "/v1/messages/count_tokens"
    models = client.models.list()
    assert models.data[0].id == MODEL


CLIENT_ADDRESS_HEADERS = {h: "10.1.2.3" for h in (
    "cf-connecting-ip", "true-client-ip", "x-client-ip", "x-cluster-client-ip",
    "x-envoy-external-address", "x-original-forwarded-for")}


def test_query_and_beta_headers_forwarded_and_key_swapped(gw, upstream):
    r = requests.post(gw.url + "/anthropic/v1/messages?beta=true",
                      headers={"x-api-key": TENANT_KEY, "anthropic-beta": "prompt-caching-2024-07-31",
                               "anthropic-version": "2023-06-01", "x-custom": "kept",
                               "cookie": "session=abc", "x-forwarded-for": "10.1.2.3",
                               "x-forwarded-host": "evil", "forwarded": "for=10.1.2.3",
                               "x-real-ip": "10.1.2.3", **CLIENT_ADDRESS_HEADERS},
                      json={"model": MODEL, "max_tokens": 5, "messages": []})
    assert r.status_code == 200
    seen = upstream.requests[-1]
    assert seen.query == "beta=true"
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert seen.headers["x-custom"] == "kept"
    # the tenant key never reaches the upstream; the upstream's own key does
    assert TENANT_KEY not in json.dumps(seen.headers)
    assert seen.headers["x-api-key"] == UPSTREAM_KEY
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"  # auto mode, not api.anthropic.com
    for dropped in ("cookie", "x-forwarded-for", "x-forwarded-host", "forwarded", "x-real-ip",
                    *CLIENT_ADDRESS_HEADERS):
        assert dropped not in seen.headers
    assert "10.1.2.3" not in json.dumps(seen.headers) and "127.0.0.1" not in json.dumps(
        {k: v for k, v in seen.headers.items() if k != "host"})
    assert seen.headers["accept-encoding"] == "identity"


def test_body_forwarded_byte_for_byte(gw, upstream):
    raw = b'{"model":  "claude-sonnet-4-20250514" ,"max_tokens":5,\n "messages":[], "x":"\\u00e9"}'
    r = requests.post(gw.url + "/anthropic/v1/messages", data=raw,
                      headers={"x-api-key": TENANT_KEY, "content-type": "application/json"})
    assert r.status_code == 200
    assert upstream.requests[-1].body == raw


def test_default_anthropic_version_added(gw, upstream):
    requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                  json={"model": MODEL, "max_tokens": 5, "messages": []})
    assert upstream.requests[-1].headers["anthropic-version"] == "2023-06-01"


def test_bearer_auth(gw):
    client = anthropic.Anthropic(base_url=gw.url + "/anthropic", auth_token=TENANT_KEY,
                                 max_retries=0)
    msg = client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert msg.content[0].text.startswith("Hello")


@pytest.mark.parametrize("headers,status,etype", [
    ({}, 401, "authentication_error"),
    ({"x-api-key": "wrong-key-wrong-key"}, 401, "authentication_error"),
    ({"authorization": "Basic abc"}, 401, "authentication_error"),
    ({"x-api-key": DISABLED_KEY}, 403, "permission_error"),
])
def test_auth_errors_have_anthropic_shape(gw, upstream, headers, status, etype):
    r = requests.post(gw.url + "/anthropic/v1/messages", headers=headers,
                      json={"model": MODEL, "max_tokens": 5, "messages": []})
    assert r.status_code == status
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == etype
    assert upstream.requests == []


def test_sdk_raises_authentication_error(gw):
    with pytest.raises(anthropic.AuthenticationError):
        sdk(gw, key="nope-nope-nope").messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])


def test_model_not_allowed_is_403_and_nothing_sent(gw, upstream):
    with pytest.raises(anthropic.PermissionDeniedError) as exc:
        sdk(gw, key=OTHER_KEY).messages.create(model=MODEL, max_tokens=5,
                                               messages=[{"role": "user", "content": "x"}])
    assert MODEL in str(exc.value)
    assert exc.value.body["error"]["type"] == "permission_error"
    assert upstream.requests == []
    # the allowed family passes, case-insensitively
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": OTHER_KEY},
                      json={"model": "claude-3-5-HAIKU-20241022", "max_tokens": 5, "messages": []})
    assert r.status_code == 200


def test_invalid_json_is_400(gw, upstream):
    r = requests.post(gw.url + "/anthropic/v1/messages", data=b'{"model": ',
                      headers={"x-api-key": TENANT_KEY, "content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "JSON" in r.json()["error"]["message"]
    r = requests.post(gw.url + "/anthropic/v1/messages", data=b'[1,2]',
                      headers={"x-api-key": TENANT_KEY, "content-type": "application/json"})
    assert r.status_code == 400
    assert upstream.requests == []


def test_body_too_large_is_413(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={"server": {"maxBodyMB": 0.01}})
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={"model": MODEL, "messages": [{"role": "user", "content": "x" * 20000}]})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"
    assert upstream.requests == []


@pytest.mark.parametrize("path", ["/anthropic/../admin", "/anthropic//evil.com/x",
                                  "/anthropic/http://evil.com/x", "/anthropic/v1/./messages"])
def test_paths_cannot_escape_the_upstream_prefix(gw, upstream, path):
    s = socket.create_connection(("127.0.0.1", gw.server.server_port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {TENANT_KEY}\r\nConnection: close\r\n\r\n"
              .encode())
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    s.close()
    assert answer.startswith(b"HTTP/1.1 404")
    assert b"not_found_error" in answer
    assert upstream.requests == []


def test_upstream_prefix_and_trailing_slash(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream, url=upstream.url + "/api/")])
    sdk(gw).messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert upstream.requests[-1].path == "/api/v1/messages"


def test_upstream_error_status_and_body_pass_through(gw, upstream):
    upstream.handler = lambda req: MockResponse(400, body=error_body("invalid_request_error",
                                                                      "max_tokens: required"))
    with pytest.raises(anthropic.BadRequestError) as exc:
        sdk(gw).messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "max_tokens: required" in str(exc.value)


def test_upstream_429_on_stream_stays_429(gw, upstream):
    upstream.handler = lambda req: MockResponse(
        429, headers=[("content-type", "application/json"), ("retry-after", "7")],
        body=error_body("rate_limit_error", "slow down"))
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={"model": MODEL, "max_tokens": 5, "stream": True, "messages": []})
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == {"type": "rate_limit_error", "message": "slow down"}
    assert r.headers["retry-after"] == "7"


def test_no_upstream_reachable_is_503_without_secrets(make_gateway):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    gw = make_gateway([{"id": "dead", "url": f"http://127.0.0.1:{port}/secret-path",
                        "key": UPSTREAM_KEY}])
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={"model": MODEL, "max_tokens": 5, "messages": []})
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "overloaded_error"
    assert str(port) not in r.text and UPSTREAM_KEY not in r.text and "secret-path" not in r.text


def test_stream_is_relayed_event_by_event(gw, upstream):
    upstream.event_delay_s = 0.2
    arrivals = []
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={"model": MODEL, "max_tokens": 5, "stream": True,
                            "messages": [{"role": "user", "content": "x"}]}, stream=True)
    buf = b""
    for chunk in r.iter_content(chunk_size=None):
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            arrivals.append((time.monotonic(), event.split(b"\n")[0]))
    names = [name for _, name in arrivals]
    assert names[0] == b"event: message_start" and names[-1] == b"event: message_stop"
    times = [t for t, _ in arrivals]
    # After the commit point (the first content block), each event arrives on its own,
    # about 200 ms after the previous one, never batched.
    gaps = [b - a for a, b in zip(times[2:], times[3:])]
    assert len(gaps) >= 4
    assert all(0.12 < g < 0.4 for g in gaps), gaps
    assert times[-1] - times[0] > 0.2 * (len(times) - 3)


def test_client_disconnect_closes_upstream(gw, upstream):
    upstream.event_delay_s = 1.0
    events = message_events(message(MODEL, [{"type": "text", "text": "x" * 80}]))
    upstream.handler = lambda req: upstream.stream(events)
    s = socket.create_connection(("127.0.0.1", gw.server.server_port))
    body = json.dumps({"model": MODEL, "max_tokens": 5, "stream": True, "messages": []}).encode()
    s.sendall(b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"x-api-key: {TENANT_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    while b"content_block_delta" not in got:
        got += s.recv(65536)
    state = gw.gateway.pool.states[0]
    assert state.in_flight == 1
    s.close()
    closed_at = time.monotonic()
    # The gateway lets go of the upstream at once, not when the upstream next writes (1 s away).
    while state.in_flight and time.monotonic() - closed_at < 2:
        gevent.sleep(0.01)
    assert state.in_flight == 0
    assert time.monotonic() - closed_at < 0.5
    # ...and the upstream sees its stream cut short.
    record = upstream.stream_log[-1]
    while not record["client_gone"] and time.monotonic() - closed_at < 4:
        gevent.sleep(0.02)
    assert record["client_gone"] and not record["done"]
    assert record["sent"] < len(events) - 3


def test_stalled_stream_ends_with_error_event(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream, timeout=500)])
    events = message_events(message(MODEL, [{"type": "text", "text": "abcdefghijklmnop"}]))

    def stalls(req):
        def body():
            yield from events[:4]
            gevent.sleep(5)
            yield from events[4:]
        return MockResponse(headers=[("content-type", "text/event-stream")], body=body())

    upstream.handler = stalls
    started = time.monotonic()
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={"model": MODEL, "max_tokens": 5, "stream": True, "messages": []},
                      timeout=10)
    assert time.monotonic() - started < 3
    assert r.status_code == 200
    assert r.text.count("event: error") == 1
    assert "message_stop" not in r.text
    tail = r.text.strip().split("\n\n")[-1]
    assert tail.startswith("event: error") and '"api_error"' in tail


def test_unknown_paths_are_refused_unless_the_operator_opens_them(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "allowPaths": ["/v1/unknown/*"]},
        {"id": "bob", "key": OTHER_KEY}])
    r = requests.get(gw.url + "/anthropic/v1/unknown/future?x=1", headers={"x-api-key": OTHER_KEY})
    assert r.status_code == 404 and "not one this gateway serves" in r.json()["error"]["message"]
    assert upstream.requests == []
    r = requests.get(gw.url + "/anthropic/v1/unknown/future?x=1", headers={"x-api-key": TENANT_KEY})
    assert r.status_code == 404  # the mock's own answer: it was forwarded
    assert upstream.requests[-1].path == "/v1/unknown/future"
    assert upstream.requests[-1].query == "x=1"
