"""Usage metering end to end: SDK requests through the gateway, /usage and the day files."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import anthropic
import gevent
import gevent.pool
import pytest
import requests

from tests.helpers import FIXTURES, OTHER_KEY, TENANT_KEY, upstream_entry, write_config
from tests.e2e.servers import free_port, wait_until, wait_up
from tests.mock_upstream import MockResponse, error_body, message, message_events

MODEL = "claude-sonnet-4-20250514"
ASK = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
# the mock answers 25 input and 12 output tokens: at $3 / $15 per M
COST_PER_REQUEST = (25 * 3 + 12 * 15) / 1e6
ROOT = Path(__file__).resolve().parents[2]


def sdk(gw, key=TENANT_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=key, max_retries=0)


def usage(gw, key=TENANT_KEY, **params):
    return requests.get(gw.url + "/usage", headers={"x-api-key": key}, params=params)


def day_lines(gw, tenant="alice"):
    root = Path(gw.gateway.data_dir) / "usage" / tenant
    files = sorted(root.glob("*/*.json"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_requests_give_exact_usage_and_day_file_lines(gw, upstream):
    client = sdk(gw)
    for _ in range(3):
        client.messages.create(**ASK)
    for _ in range(3):
        with client.messages.stream(**ASK, metadata={"user_id": "conv-1"}) as s:
            s.get_final_message()
    client.messages.count_tokens(model=MODEL, messages=ASK["messages"])  # free: no record
    body = usage(gw).json()
    today = body["today"]
    assert today["requests"] == 6 and today["errors"] == 0
    assert today["inputTokens"] == 150 and today["outputTokens"] == 72
    assert today["totalTokens"] == 222
    assert today["costUSD"] == pytest.approx(6 * COST_PER_REQUEST)
    assert today["byModel"][MODEL]["requests"] == 6
    assert body["tenant"] == {"id": "alice", "name": "Alice"}
    assert TENANT_KEY not in json.dumps(body)
    lines = day_lines(gw)
    assert len(lines) == 6
    streamed = [r for r in lines if r["stream"]]
    assert len(streamed) == 3 and all(r["sessionId"] == "conv-1" for r in streamed)
    first = lines[0]
    assert first["tenantId"] == "alice" and first["model"] == MODEL and first["api"] == "anthropic"
    assert first["requestedModel"] == MODEL and first["upstream"] == "primary"
    assert first["statusCode"] == 200 and first["errorType"] is None
    assert first["inputCost"] == pytest.approx(75e-6) and first["outputCost"] == pytest.approx(180e-6)
    assert first["timestamp"].endswith("Z") and isinstance(first["duration"], int)
    assert isinstance(first["ttfbMs"], float)
    assert len(body["history"]) == 7 and body["history"][-1]["requests"] == 6


def test_a_lone_surrogate_from_the_client_never_loses_the_record(gw, upstream):
    """JSON allows "\\ud800", UTF-8 cannot hold it: a tenant sending one as its session id or
    model name is still metered (the record's line escapes it) and the access log keeps going."""
    for user_id in ("conv-\ud800", "plain"):
        body = json.dumps({**ASK, "metadata": {"user_id": user_id}}).encode()  # ascii: escaped
        r = requests.post(gw.url + "/anthropic/v1/messages", data=body,
                          headers={"x-api-key": TENANT_KEY, "content-type": "application/json"})
        assert r.status_code == 200
    assert usage(gw).json()["today"]["requests"] == 2
    lines = day_lines(gw)
    assert [r["sessionId"] for r in lines] == ["conv-\ud800", "plain"]
    access = Path(gw.gateway.data_dir) / "logs" / "access.log"
    wait_until(lambda: access.exists() and access.read_text().count("/anthropic/v1/messages") == 2)


def test_cache_tokens_of_streams_are_kept(gw, upstream):
    msg = message(MODEL, [{"type": "text", "text": "cached"}], input_tokens=3, output_tokens=40,
                  cache_creation=1000, cache_read=20000)
    upstream.handler = lambda req: upstream.stream(message_events(msg))
    with sdk(gw).messages.stream(**ASK) as s:
        s.get_final_message()
    record = day_lines(gw)[-1]
    assert (record["inputTokens"], record["cacheCreationTokens"], record["cacheReadTokens"],
            record["outputTokens"]) == (3, 1000, 20000, 40)
    expected = (3 * 3 + 1000 * 3.75 + 20000 * 0.3 + 40 * 15) / 1e6
    assert record["totalCost"] == pytest.approx(expected)


def test_tenants_are_isolated(gw):
    sdk(gw).messages.create(**ASK)
    sdk(gw, OTHER_KEY).messages.create(**{**ASK, "model": "claude-3-5-haiku-20241022"})
    alice, bob = usage(gw).json(), usage(gw, OTHER_KEY).json()
    assert alice["today"]["requests"] == 1 and bob["today"]["requests"] == 1
    assert list(bob["today"]["byModel"]) == ["claude-3-5-haiku-20241022"]


def test_usage_auth_and_node_body(gw):
    assert usage(gw, "wrong-key-123").status_code == 401
    r = requests.post(gw.url + "/usage", json={"type": "tenant", "apiKey": TENANT_KEY})
    assert r.status_code == 200 and r.json()["tenant"]["id"] == "alice"
    assert usage(gw, days="0").status_code == 400
    assert usage(gw, days="abc").json()["error"]["type"] == "invalid_request_error"
    assert len(usage(gw, days="30").json()["history"]) == 30


def test_daily_limit_blocks_with_429_and_nothing_upstream(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": 0.0004}}}])
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    assert r.status_code == 200
    assert float(r.headers["x-ccgate-daily-remaining-usd"]) == pytest.approx(0.0004)
    sdk(gw).messages.create(**ASK)  # spent 0.000255 < 0.0004: still admitted
    seen = len(upstream.requests)
    with pytest.raises(anthropic.RateLimitError) as exc:
        sdk(gw).messages.create(**ASK)
    assert len(upstream.requests) == seen
    # A spend limit is a billing_error (issue 15), its money shown truly (issue 14).
    assert exc.value.body["error"]["type"] == "billing_error"
    assert "daily spending limit of $0.0004" in exc.value.body["error"]["message"]
    retry_after = int(exc.value.response.headers["retry-after"])
    assert 0 < retry_after <= 86400
    limits = usage(gw).json()["limits"]["daily"]
    assert limits["exceeded"] is True and limits["remainingUSD"] == 0
    assert limits["usedUSD"] == pytest.approx(2 * COST_PER_REQUEST)


def test_upstream_error_recorded_with_status_and_zero_tokens(gw, upstream):
    upstream.handler = lambda req: MockResponse(400, body=error_body("invalid_request_error", "no"))
    with pytest.raises(anthropic.BadRequestError):
        sdk(gw).messages.create(**ASK)
    record = day_lines(gw)[-1]
    assert record["statusCode"] == 400 and record["errorType"] == "invalid_request_error"
    assert record["totalTokens"] == 0 and record["totalCost"] == 0
    assert usage(gw).json()["today"]["errors"] == 1


def test_client_that_disconnects_mid_stream_is_billed(gw, upstream):
    upstream.event_delay_s = 0.5
    msg = message(MODEL, [{"type": "text", "text": "x" * 200}], input_tokens=900, output_tokens=50)
    upstream.handler = lambda req: upstream.stream(message_events(msg))
    s = socket.create_connection(("127.0.0.1", gw.server.server_port))
    body = json.dumps({**ASK, "stream": True}).encode()
    s.sendall(b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"x-api-key: {TENANT_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    while b"content_block_delta" not in got:
        got += s.recv(65536)
    s.close()
    deadline = time.monotonic() + 3
    while not day_lines(gw) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    record = day_lines(gw)[-1]
    assert record["interrupted"] == "client"
    # message_start said 1 output token; the 8 characters that streamed count for 2 (issue 15:
    # a cut stream is billed for at least the text it carried, about 4 characters a token).
    assert record["inputTokens"] == 900 and record["outputTokens"] == 2
    assert record["totalCost"] > 0


def test_rpm_and_concurrency_limits(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"rpm": 2, "concurrency": 1}}])
    upstream.event_delay_s = 0.3
    held = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                         json={**ASK, "stream": True}, stream=True)
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    assert r.status_code == 429 and "concurrency limit of 1" in r.json()["error"]["message"]
    held.content  # drain: the slot is released when the stream ends
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    assert r.status_code == 200
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    assert r.status_code == 429 and "2 requests per minute" in r.json()["error"]["message"]
    assert 50 <= int(r.headers["retry-after"]) <= 60


def test_node_ccgate_data_dir_through_usage(make_mock, tmp_path):
    from ccgate import create_app
    from tests.e2e.servers import RunningGateway
    shutil.copytree(FIXTURES / "ccgate-node" / "data", tmp_path / "data")
    mock = make_mock("m")
    config = write_config(tmp_path / "cfg", [upstream_entry(mock)],
                          tenants=[{"id": "default", "key": TENANT_KEY,
                                    "limits": {"daily": {"maxUSD": 100}}}])
    gw = RunningGateway(create_app(config, tmp_path / "data"))
    try:
        gw.gateway.clock = lambda: datetime(2026, 11, 26, 12, tzinfo=timezone.utc).timestamp()
        body = usage(gw).json()
        assert body["date"] == "2026-11-26"
        assert body["today"]["requests"] == 29
        assert body["today"]["costUSD"] == pytest.approx(0.121975)
        assert body["limits"]["daily"]["usedUSD"] == pytest.approx(0.121975)
        assert "unknown" in body["today"]["byModel"]
    finally:
        gw.stop()




def test_two_gateway_processes_share_one_data_dir(make_mock, tmp_path):
    mock = make_mock("m")
    config = write_config(tmp_path / "cfg", [upstream_entry(mock)])
    ports = [free_port(), free_port()]
    env = {**os.environ, "CCGATE_CONFIG_DIR": str(config), "CCGATE_DATA_DIR": str(tmp_path / "data"),
           "HOST": "127.0.0.1"}
    procs = [subprocess.Popen([sys.executable, str(ROOT / "app.py")], env={**env, "PORT": str(p)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in ports]
    try:
        for p in ports:
            wait_up(f"http://127.0.0.1:{p}/health")
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=100))

        def one(i):
            r = session.post(f"http://127.0.0.1:{ports[i % 2]}/anthropic/v1/messages",
                             headers={"x-api-key": TENANT_KEY}, json={**ASK, "stream": i % 4 == 0})
            return r.status_code

        statuses = gevent.pool.Pool(100).map(one, range(200))
        assert statuses == [200] * 200

        def lines_now():
            files = list((tmp_path / "data" / "usage" / "alice").glob("*/*.json"))
            return b"".join(f.read_bytes() for f in files).split(b"\n")
        # A record is written as its response ends, a moment after the client has read it.
        wait_until(lambda: len(lines_now()) >= 201, timeout=5)
        lines = lines_now()
        assert lines[-1] == b"" and len(lines) == 201
        records = [json.loads(line) for line in lines[:-1]]
        assert len({r["requestId"] for r in records}) == 200
        total = sum(r["totalCost"] for r in records)
        for p in ports:
            today = requests.get(f"http://127.0.0.1:{p}/usage",
                                 headers={"x-api-key": TENANT_KEY}).json()["today"]
            assert today["requests"] == 200 and today["inputTokens"] == 200 * 25
            assert today["costUSD"] == pytest.approx(total, abs=1e-6)
            assert total == pytest.approx(200 * COST_PER_REQUEST)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


@pytest.mark.parametrize("stream", [False, True])
def test_web_searches_are_billed_per_search(make_gateway, upstream, stream):
    """Issue 31 (in part): an upstream reporting 50 web searches adds exactly $0.50 to the record
    and to the tenant's day, streamed or not."""
    from tests.mock_upstream import MockResponse, message, message_events
    msg = message("claude-sonnet-4-5-20250929", [{"type": "text", "text": "Found it."}],
                  input_tokens=1000, output_tokens=1000)
    msg["usage"]["server_tool_use"] = {"web_search_requests": 50}
    events = message_events(msg)
    if stream:  # the final count comes in message_delta, as Anthropic sends it
        last = [i for i, e in enumerate(events) if e.startswith(b"event: message_delta")][0]
        events[last] = events[last].replace(
            b'"usage": {"output_tokens": 1000}',
            b'"usage": {"output_tokens": 1000, "server_tool_use": {"web_search_requests": 50}}')
    upstream.handler = lambda req: (upstream.stream(events) if stream
                                    else MockResponse(body=json.dumps(msg).encode()))
    gw = make_gateway([upstream_entry(upstream)])
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={"model": "claude-sonnet-4-5-20250929", "max_tokens": 1000,
                            "stream": stream, "messages": [{"role": "user", "content": "look"}]})
    assert r.status_code == 200
    tokens = 1000 * 3 / 1e6 + 1000 * 15 / 1e6
    wait_until(lambda: requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY})
               .json()["today"]["requests"] == 1)
    rec = [json.loads(line) for f in (Path(gw.gateway.data_dir) / "usage").rglob("*.json")
           for line in f.read_text().splitlines()][0]
    assert rec["webSearchRequests"] == 50 and rec["webSearchCost"] == pytest.approx(0.50)
    assert rec["totalCost"] == pytest.approx(tokens + 0.50)
    day = requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY}).json()["today"]
    assert day["costUSD"] == pytest.approx(tokens + 0.50)
