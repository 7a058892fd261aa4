"""Hardening, round two: behind a reverse proxy, slow request bodies, greedy clients."""
import http.client
import gc
import json
import random
import resource
import socket
import time

import gevent
import gevent.pool
import pytest
import requests

from tests.helpers import OTHER_KEY, TENANT_KEY, upstream_entry
from tests.e2e.servers import wait_until
from tests.mock_upstream import message, message_events

ADMIN = {"enabled": True, "path": "/admin", "username": "boss", "password": "s3cret-Passw0rd"}
ASK = {"model": "claude-sonnet-4-20250514", "max_tokens": 5,
       "messages": [{"role": "user", "content": "hi"}]}


def call(gw, path, *, source="127.0.0.1", headers=None, body=None, method="GET"):
    """One request from loopback address ``source`` (127.0.0.2 stands for a stranger)."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"content-type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def login(gw, password, **kw):
    import base64
    token = base64.b64encode(f"boss:{password}".encode()).decode()
    return call(gw, "/admin/api/overview", headers={"authorization": f"Basic {token}",
                                                    **kw.pop("headers", {})}, **kw)[0]


@pytest.fixture
def behind_proxy(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={
        "admin": ADMIN, "server": {"trustedProxies": ["127.0.0.1"]}})
    gw.port = int(gw.url.rsplit(":", 1)[1])
    return gw


def test_behind_a_proxy_lockouts_hit_only_the_attacker(behind_proxy):
    gw = behind_proxy
    attacker = {"x-forwarded-for": "203.0.113.7"}  # as the trusted proxy (127.0.0.1) says
    friend = {"x-forwarded-for": "198.51.100.9, 127.0.0.1"}  # a trusted hop is skipped
    for _ in range(10):
        assert login(gw, "wrong", headers=attacker) == 401
    assert login(gw, "s3cret-Passw0rd", headers=attacker) == 429  # the attacker is locked out
    assert login(gw, "s3cret-Passw0rd", headers=friend) == 200  # everyone else behind the proxy is not
    assert login(gw, "s3cret-Passw0rd") == 200  # nor the proxy itself


def test_a_forged_forwarded_for_from_a_stranger_changes_nothing(behind_proxy):
    gw = behind_proxy
    forged = {"x-forwarded-for": "198.51.100.9", "forwarded": "for=198.51.100.9"}
    for _ in range(10):
        assert login(gw, "wrong", source="127.0.0.2", headers=forged) == 401
    assert login(gw, "s3cret-Passw0rd", source="127.0.0.2") == 429  # 127.0.0.2 itself is locked
    assert login(gw, "s3cret-Passw0rd", headers={"x-forwarded-for": "198.51.100.9"}) == 200


def test_the_real_client_reaches_records_access_log_and_audit(behind_proxy):
    gw = behind_proxy
    status, _ = call(gw, "/anthropic/v1/messages", method="POST", body=ASK,
                     headers={"x-api-key": TENANT_KEY, "forwarded": 'for="[2001:db8::7]:4711"'})
    assert status == 200
    status, _ = call(gw, "/anthropic/v1/messages", method="POST", body=ASK, source="127.0.0.2",
                     headers={"x-api-key": TENANT_KEY, "x-forwarded-for": "192.0.2.1"})
    assert status == 200
    root = gw.gateway.data_dir / "usage" / "alice"
    records = lambda: [json.loads(line) for f in root.glob("*/*.json")
                       for line in f.read_text().splitlines() if line]
    wait_until(lambda: len(records()) == 2)
    assert sorted(r["clientIP"] for r in records()) == ["127.0.0.2", "2001:db8::7"]
    access = gw.gateway.data_dir / "logs" / "access.log"
    wait_until(lambda: access.exists() and "2001:db8::7" in access.read_text())
    import base64
    auth = "Basic " + base64.b64encode(b"boss:s3cret-Passw0rd").decode()
    call(gw, "/admin/api/tenants", method="POST", body={"id": "dora"},
         headers={"authorization": auth, "x-ccgate-admin": "1", "x-forwarded-for": "203.0.113.50"})
    audit = (gw.gateway.data_dir / "logs" / "audit.log").read_text()
    assert json.loads(audit.splitlines()[-1])["ip"] == "203.0.113.50"


def test_a_stalled_request_body_gets_408_and_the_connection_closes(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={"server": {"bodyTimeout": 500}})
    port = int(gw.url.rsplit(":", 1)[1])
    for head in (b"Content-Length: 100\r\n", b"Transfer-Encoding: chunked\r\n"):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " +
                  TENANT_KEY.encode() + b"\r\ncontent-type: application/json\r\n" + head +
                  b"\r\n" + (b"{" if b"Length" in head else b"1\r\n{\r\n"))
        started = time.monotonic()
        s.settimeout(5)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        took = time.monotonic() - started
        s.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"stopped arriving" in answer and 0.4 < took < 3
    assert upstream.requests == []


def _more_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _hold_streams(gw, key, n):
    """``n`` streams opened at once by one tenant: their statuses and responses (kept open)."""
    held, statuses = [], []

    def hold(_):
        r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": key},
                          json={**ASK, "stream": True}, stream=True, timeout=30)
        statuses.append(r.status_code)
        held.append(r)

    pool = gevent.pool.Pool(n)
    for i in range(n):
        pool.spawn(hold, i)
    wait_until(lambda: len(statuses) == n, timeout=30)
    return statuses, held


def test_a_tenant_holding_500_streams_does_not_slow_another(make_gateway, upstream):
    _more_descriptors()
    events = message_events(message(ASK["model"], [{"type": "text", "text": "x" * 20}]))
    def handler(req):
        if not req.json.get("stream"):
            return upstream.default(req)
        gevent.sleep(random.random())  # real streams do not tick in step
        return upstream.stream(events, delay_s=1.0)

    upstream.handler = handler
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "greedy", "key": TENANT_KEY}, {"id": "other", "key": OTHER_KEY}],
        server={"server": {"maxConnectionsPerIP": 0}})  # all 500 come from 127.0.0.1
    requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": OTHER_KEY}, json=ASK)
    statuses, held = _hold_streams(gw, TENANT_KEY, 500)
    assert statuses.count(200) == 500
    gevent.sleep(1.5)  # past the opening burst (bench/ measures that): now they are just held
    # app.py freezes what start-up allocated, so full collections skip it; here the test
    # harness's own heap (pytest, the mock, 500 clients) stands in for that.
    gc.collect()
    gc.freeze()
    took = []
    for _ in range(50):
        started = time.monotonic()
        r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": OTHER_KEY},
                          json=ASK, timeout=10)
        took.append(time.monotonic() - started)
        assert r.status_code == 200
    gc.unfreeze()
    took.sort()
    print(f"another tenant while 500 streams are held open: p50 {took[25] * 1000:.1f} ms, "
          f"p99 {took[-1] * 1000:.1f} ms")
    assert took[-1] < 0.1
    for r in held:
        r.close()


def test_limits_max_connections_refuses_at_once(make_gateway, upstream):
    events = message_events(message(ASK["model"], [{"type": "text", "text": "x" * 20}]))
    upstream.handler = lambda req: upstream.stream(events, delay_s=0.5)
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "greedy", "key": TENANT_KEY, "limits": {"maxConnections": 50}}])
    statuses, held = _hold_streams(gw, TENANT_KEY, 100)
    assert statuses.count(200) == 50 and statuses.count(429) == 50
    refused = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                            json=ASK, timeout=5)
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert "limits.maxConnections" in refused.json()["error"]["message"]
    for r in held:
        r.close()
    wait_until(lambda: requests.post(gw.url + "/anthropic/v1/messages", json=ASK, timeout=10,
                                     headers={"x-api-key": TENANT_KEY}).status_code == 200)


def test_past_max_connections_the_next_client_gets_503_and_it_recovers(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={"server": {"maxConnections": 20}})
    port = int(gw.url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    gevent.sleep(0.2)
    for path, shape in (("/anthropic/v1/messages", "overloaded_error"), ("/openai/v1/chat/completions", "server_error")):
        r = requests.post(gw.url + path, headers={"x-api-key": TENANT_KEY}, json=ASK, timeout=5)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["type"] == shape and "maxConnections" in r.json()["error"]["message"]
    for s in idle:
        s.close()
    wait_until(lambda: requests.post(gw.url + "/anthropic/v1/messages", json=ASK, timeout=5,
                                     headers={"x-api-key": TENANT_KEY}).status_code == 200)


# -- issue 32, items 2 and 7: one address cannot hold every slot; guessing learns nothing ------
def test_one_address_is_capped_and_a_trusted_proxy_is_not(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={"server": {
        "maxConnectionsPerIP": 10, "trustedProxies": ["127.0.0.3"]}})
    gw.port = int(gw.url.rsplit(":", 1)[1])
    held = [socket.create_connection(("127.0.0.1", gw.port), source_address=("127.0.0.2", 0))
            for _ in range(10)]
    proxied = [socket.create_connection(("127.0.0.1", gw.port), source_address=("127.0.0.3", 0))
               for _ in range(12)]
    gevent.sleep(0.2)
    status, body = call(gw, "/anthropic/v1/messages", source="127.0.0.2", method="POST",
                        headers={"x-api-key": TENANT_KEY}, body=ASK)
    assert status == 503 and b"maxConnectionsPerIP" in body
    # another address, and the proxy with more than 10 open, are served
    assert call(gw, "/anthropic/v1/messages", method="POST", headers={"x-api-key": TENANT_KEY},
                body=ASK)[0] == 200
    assert call(gw, "/anthropic/v1/messages", source="127.0.0.3", method="POST",
                headers={"x-api-key": TENANT_KEY}, body=ASK)[0] == 200
    for s in held + proxied:
        s.close()
    wait_until(lambda: call(gw, "/health", source="127.0.0.2")[0] == 200)


def idle_for(gw, request: bytes, most: float = 30.0) -> float:
    """Seconds a kept-alive connection stays open after answering ``request``."""
    s = socket.create_connection(("127.0.0.1", int(gw.url.rsplit(":", 1)[1])))
    s.settimeout(most)
    s.sendall(request)
    data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 "), data[:100]
    started = time.monotonic()
    try:
        while s.recv(65536):
            pass
    except socket.timeout:
        pass
    finally:
        s.close()
    return time.monotonic() - started


def test_keyless_keep_alive_connections_close_sooner(gw, monkeypatch):
    import ccgate.http.server
    monkeypatch.setattr(ccgate.http.server, "KEYLESS_IDLE_S", 0.5)  # 5 s in production
    monkeypatch.setattr(ccgate.http.server, "IDLE_KEEPALIVE_S", 3.0)  # 75 s in production
    keyless = idle_for(gw, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
    refused = idle_for(gw, b"GET /usage HTTP/1.1\r\nhost: x\r\nx-api-key: sk-wrong-key-0000\r\n\r\n")
    keyed = idle_for(gw, b"GET /usage HTTP/1.1\r\nhost: x\r\nx-api-key: " + TENANT_KEY.encode()
                     + b"\r\n\r\n")
    assert keyless < 1.5 and refused < 1.5
    assert keyed > 2.5


def test_a_blocked_address_learns_nothing_from_a_right_key(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)])
    gw.port = int(gw.url.rsplit(":", 1)[1])
    usage = "/usage"
    # bob's key worked from this address before the block: it keeps working (one NAT)
    assert call(gw, usage, source="127.0.0.5", headers={"x-api-key": OTHER_KEY})[0] == 200
    for i in range(30):
        call(gw, usage, source="127.0.0.5", headers={"x-api-key": f"sk-guess-{i:020d}"})
    assert call(gw, usage, source="127.0.0.5", headers={"x-api-key": "sk-guess-x" * 3})[0] == 429
    # alice's key, right but never served to this address, gets the same 429 as a wrong one
    assert call(gw, usage, source="127.0.0.5", headers={"x-api-key": TENANT_KEY})[0] == 429
    assert call(gw, usage, source="127.0.0.5", headers={"x-api-key": OTHER_KEY})[0] == 200
    assert call(gw, usage, source="127.0.0.6", headers={"x-api-key": TENANT_KEY})[0] == 200
    # a failure while blocked extends the block
    throttle = gw.gateway.key_throttle
    before = throttle.blocked_for("127.0.0.5")
    time.sleep(0.3)
    call(gw, usage, source="127.0.0.5", headers={"x-api-key": "sk-guess-y" * 3})
    assert throttle.blocked_for("127.0.0.5") > before - 0.1
