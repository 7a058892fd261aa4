"""Nothing lost, nothing leaked when things break (issue 21): leaking mirrors, abandoned and
half-closing clients, giant SSE lines."""
import json
import socket
import time

import gevent
import openai
import pytest
import requests

from tests.helpers import TENANT_KEY, UPSTREAM_KEY, upstream_entry
from tests.e2e.servers import wait_until
from tests.mock_upstream import MockResponse, message, message_events, sse

MODEL = "claude-sonnet-4-20250514"
ASK = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def post(gw, stream=False, **kw):
    return requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                         json={**ASK, "stream": stream}, timeout=10, **kw)


def records(gw, tenant="alice"):
    root = gw.gateway.data_dir / "usage" / tenant
    return [json.loads(line) for f in sorted(root.glob("*/*.json"))
            for line in f.read_text().split("\n") if line]



# -- a mirror that echoes its key and URL ----------------------------------------------------------
def leaky(upstream):
    """Upstream answers that quote its key and URL in every place a client can see."""
    url = upstream.url

    def handler(req):
        doc = req.json or {}
        if doc.get("max_tokens") == 1:  # a 4xx JSON error
            return MockResponse(400, headers=[("content-type", "application/json"),
                                              ("location", f"{url}/v1/retry"),
                                              ("x-debug-key", UPSTREAM_KEY)],
                                body=json.dumps({"type": "error", "error": {
                                    "type": "invalid_request_error",
                                    "message": f"prompt is too long for key {UPSTREAM_KEY} at "
                                               f"{url}/v1/messages"}}).encode())
        if doc.get("max_tokens") == 2:  # an HTML page from the mirror's proxy
            return MockResponse(404, headers=[("content-type", "text/html")],
                                body=f"<html>{UPSTREAM_KEY} {url}</html>".encode())
        msg = message(MODEL, [{"type": "text", "text": "partial"}])
        events = message_events(msg)[:3]
        error = sse("error", {"type": "error", "error": {
            "type": "overloaded_error", "message": f"Overloaded: key {UPSTREAM_KEY} via {url}"}})
        half = len(error) // 2  # the key arrives split over two chunks
        return MockResponse(headers=[("content-type", "text/event-stream")],
                            body=iter(events + [error[:half], error[half:]]))
    return handler


def test_mirror_echoing_its_key_and_url_is_cleaned_on_both_apis(gw, upstream):
    upstream.handler = leaky(upstream)
    secret_bits = (UPSTREAM_KEY, upstream.url, f"127.0.0.1:{upstream.port}")
    answers = []
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={**ASK, "max_tokens": 1})
    assert r.status_code == 400 and "prompt is too long for key" in r.json()["error"]["message"]
    answers.append(r.text + json.dumps(dict(r.headers)))
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={**ASK, "max_tokens": 2})
    assert r.status_code == 404 and r.text.startswith("<html>")
    answers.append(r.text)
    r = post(gw, stream=True)
    assert "Overloaded: key" in r.text and "event: error" in r.text
    answers.append(r.text)
    client = openai.OpenAI(base_url=gw.url + "/openai/v1", api_key=TENANT_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, max_tokens=1,
                                       messages=[{"role": "user", "content": "hi"}])
    answers.append(str(e.value.body))
    chunks = client.chat.completions.create(model=MODEL, max_tokens=5, stream=True,
                                            messages=[{"role": "user", "content": "hi"}])
    try:
        answers.append(json.dumps([c.model_dump() for c in chunks]))
    except openai.APIError as err:
        answers.append(str(err) + str(getattr(err, "body", "")))
    for answer in answers:
        for bit in secret_bits:
            assert bit not in answer, answer[:500]


# -- clients that leave, or only half-close --------------------------------------------------------
def raw_request(body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"x-api-key: {TENANT_KEY}\r\ncontent-length: {len(data)}\r\n\r\n".encode() + data)


def test_abandoned_requests_free_their_slots_before_the_upstream_answers(make_gateway, upstream):
    slow = {"n": 0}

    def handler(req):
        slow["n"] += 1
        if slow["n"] <= 20:
            return MockResponse(delay_s=20, body=json.dumps(message(MODEL, [])).encode())
        return upstream.default(req)
    upstream.handler = handler
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"concurrency": 20}}])
    socks = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", gw.server.server_port))
        s.sendall(raw_request(ASK))
        socks.append(s)
    wait_until(lambda: slow["n"] == 20)
    gevent.sleep(0.5)
    for s in socks:
        s.close()
    wait_until(lambda: gw.gateway.in_flight == 0 and gw.gateway.pool.states[0].in_flight == 0,
               timeout=3)
    assert post(gw).status_code == 200  # the tenant is not stuck at its concurrency limit
    wait_until(lambda: len(records(gw)) == 21)
    gone = [r for r in records(gw) if r["statusCode"] == 499]
    assert len(gone) == 20 and all(r["totalCost"] == 0 for r in gone)


# It failed 1 run in 6: 30 in a row catch it (the slow case, not racy, twice).
@pytest.mark.parametrize("pace,attempt", [(pace, attempt) for pace in ("at once", "closing late")
                                          for attempt in range(30)] + [("slow", 0), ("slow", 1)])
@pytest.mark.parametrize("stream", [False, True])
def test_half_closed_client_still_gets_its_answer(gw, upstream, stream, pace, attempt):
    """A client that shuts its sending side after the request still gets the whole answer,
    whether the answer is slow (the watch probes before the response) or comes at once (its
    EOF is seen only after the response started: it lost the body 1 run in 6)."""
    msg = message(MODEL, [{"type": "text", "text": "all of it"}])
    slow = pace == "slow"
    shut_after = 0.004 * (attempt % 6) if pace == "closing late" else 0  # around the answer

    def late_body():
        gevent.sleep(0.5 if slow else 0.01)  # headers first, the body later
        yield json.dumps(msg).encode()
    upstream.handler = lambda req: (
        upstream.stream(message_events(msg), delay_s=0.05 if slow else 0) if stream
        else MockResponse(delay_s=0.3 if slow else 0, body=late_body()))
    s = socket.create_connection(("127.0.0.1", gw.server.server_port))
    s.sendall(raw_request({**ASK, "stream": stream}).replace(b"host: x\r\n",
                                                              b"host: x\r\nconnection: close\r\n"))
    time.sleep(shut_after)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(5)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    final = data[data.index(b"HTTP/1.1 200"):]
    assert b"all of it" in data.replace(b'"', b"") or b"all of" in final
    assert (b"message_stop" in final) if stream else (b'"end_turn"' in final)
    wait_until(lambda: len(records(gw)) == 1)
    assert "interrupted" not in records(gw)[0]


# -- a giant SSE line ------------------------------------------------------------------------------
def test_giant_upstream_line_ends_the_stream_and_blocks_nobody(gw, upstream):
    msg = message(MODEL, [{"type": "text", "text": "x"}])

    def giant():
        yield from message_events(msg)[:2]
        yield b"event: content_block_delta\ndata: "
        for _ in range(32 * 16):  # 32 MB in 64 KB pieces, never a line end
            yield b"x" * 65536
        yield b"\n\n"
    upstream.handler = lambda req: MockResponse(headers=[("content-type", "text/event-stream")],
                                                body=giant())
    result = {}
    streamer = gevent.spawn(lambda: result.setdefault("r", post(gw, stream=True)))
    gevent.sleep(0.2)
    health = requests.get(gw.url + "/health", timeout=5)
    assert health.status_code in (200, 503)
    streamer.join(30)
    text = result["r"].text
    assert text.rstrip().endswith("}") and "event: error" in text and "MB" in text
    assert len(text) < 12 * 1024 * 1024
    wait_until(lambda: len(records(gw)) == 1)
    assert records(gw)[0]["errorType"] == "api_error"


# -- invented model names --------------------------------------------------------------------------
def test_invented_model_names_do_not_grow_metrics_or_reports(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={
        "admin": {"username": "admin", "password": "admin-pw-123"}})
    upstream.handler = lambda req: (upstream.default(req) if req.json["model"] == MODEL else
                                    MockResponse(404, body=b'{"type":"error","error":{"type":'
                                                           b'"not_found_error","message":"no"}}'))
    names = [f"made-up-{i}-" + "z" * 300 for i in range(60)]
    for name in names:
        r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                          json={**ASK, "model": name})
        assert r.status_code == 404
    assert post(gw).status_code == 200
    metrics = requests.get(gw.url + "/metrics", auth=("admin", "admin-pw-123")).text
    overview = requests.get(gw.url + "/admin/api/overview", auth=("admin", "admin-pw-123")).text
    for text in (metrics, overview):
        # these names only (the metrics registry is the process's: other tests leave theirs)
        assert not any(name[:40] in text for name in names)
        assert MODEL in text
    assert 'model="other"' in metrics
    recs = records(gw)
    assert {r["model"] for r in recs} == {"other", MODEL}
    assert all(len(r["requestedModel"]) <= 200 for r in recs)
    assert recs[0]["requestedModel"].startswith("made-up-0-")


# -- long streams are recorded as they go ----------------------------------------------------------
def test_long_stream_is_recorded_as_it_goes_and_counted_once(gw, upstream, monkeypatch):
    import ccgate.usage.meter
    monkeypatch.setattr(ccgate.usage.meter, "PROVISIONAL_EVERY_S", 0.3)
    text = "word " * 40
    upstream.handler = lambda req: upstream.stream(
        message_events(message(MODEL, [{"type": "text", "text": text}], output_tokens=77)),
        delay_s=0.05)
    result = {}
    streamer = gevent.spawn(lambda: result.setdefault("r", post(gw, stream=True)))
    wait_until(lambda: records(gw))  # a record exists while the stream still runs
    mid = records(gw)
    assert not streamer.ready() and mid[0]["provisional"] >= 1 and mid[0]["inputTokens"] == 25
    streamer.join(10)
    assert result["r"].status_code == 200
    final = records(gw)
    assert len(final) > 1 and "provisional" not in final[-1]
    assert final[-1]["outputTokens"] == 77
    usage = requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY}).json()
    assert usage["today"]["requests"] == 1 and usage["today"]["outputTokens"] == 77


# -- request heads ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sent", [b"", b"POST /anthropic/v1/mes"])
def test_a_silent_or_partial_head_is_cut_after_the_head_timeout(gw, monkeypatch, sent):
    import ccgate.http.server
    monkeypatch.setattr(ccgate.http.server, "HEAD_TIMEOUT_S", 0.5)  # 15 s in production
    s = socket.create_connection(("127.0.0.1", gw.server.server_port))
    s.sendall(sent)
    s.settimeout(5)
    started = time.monotonic()
    try:
        assert s.recv(1024) == b""  # closed, nothing answered
    except ConnectionResetError:
        pass
    assert 0.4 < time.monotonic() - started < 3
    s.close()


def test_a_kept_alive_connection_trickling_its_next_head_is_cut(gw, monkeypatch):
    import ccgate.http.server
    monkeypatch.setattr(ccgate.http.server, "IDLE_KEEPALIVE_S", 0.8)  # 75 s in production
    s = socket.create_connection(("127.0.0.1", gw.server.server_port))
    s.sendall(b"GET /usage HTTP/1.1\r\nhost: x\r\nx-api-key: " + TENANT_KEY.encode()
              + b"\r\n\r\n")
    s.settimeout(5)
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    started, closed = time.monotonic(), False
    for byte in b"GET /health HTTP/1.1\r\nhost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n":
        try:
            s.sendall(bytes([byte]))
            s.settimeout(0.1)
            closed = s.recv(1) == b""
        except socket.timeout:
            pass
        except OSError:
            closed = True
        if closed:
            break
    assert closed and 0.6 < time.monotonic() - started < 3  # the whole head had 0.8 s
    s.close()


def test_a_whole_answer_is_recorded_before_its_last_bytes_go_out(gw, upstream):
    """The record is written when the final usage arrives, not when the relay ends: a crash
    (kill -9) after the client saw the end of its answer cannot lose the record."""
    from tests.mock_upstream import MockResponse, message, message_events
    events = message_events(message(ASK["model"], [{"type": "text", "text": "hello"}]))

    def body():
        yield b"".join(events[:-1])  # everything up to message_delta (final usage)
        gevent.sleep(2.0)
        yield events[-1]  # message_stop, two seconds later

    upstream.handler = lambda req: MockResponse(headers=[("content-type", "text/event-stream")],
                                                body=body())
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={**ASK, "stream": True}, stream=True, timeout=10)
    seen, chunks = b"", r.iter_content(None)
    for chunk in chunks:
        seen += chunk
        if b"message_delta" in seen:
            break
    wait_until(lambda: len(records(gw)) == 1, timeout=1.5)  # before message_stop is even sent
    assert records(gw)[0]["outputTokens"] == 12 and "interrupted" not in records(gw)[0]
    rest = b"".join(chunks)
    assert b"message_stop" in rest and len(records(gw)) == 1  # and written once
