"""Fault injection: misbehaving upstreams and clients. Each case: a well-formed answer (or stream
end), the gateway keeps serving, every request billed exactly once, no descriptor leaks."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import gevent
import gevent.event
import gevent.pool
import pytest
import requests

from ccgate.proxy import attempt
from ccgate.proxy.attempt import iter_raw, make_adapter, prepare
from tests.helpers import TENANT_KEY, write_config
from tests.e2e.servers import free_port, wait_up
from tests.e2e.faults.raw_upstream import (RawUpstream, chunk, good_json, gzip_json, read_request, response, sse_head,
                                       stream_events, trickle)

ROOT = Path(__file__).resolve().parents[3]
ASK = {"model": "claude-sonnet-4-20250514", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def raw():
    up = RawUpstream()
    yield up
    up.stop()


@pytest.fixture
def fgw(make_gateway, raw):
    return make_gateway([{"id": "raw", "url": raw.url, "key": "sk-upstream-raw-123", "timeout": 800}],
                        load_balancer={"failoverEnabled": False})


def call(gw, stream=False, timeout=10):
    return requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                         json={**ASK, "stream": stream}, timeout=timeout)


def records(gw) -> list[dict]:
    out = []
    for f in (Path(gw.gateway.data_dir) / "usage").rglob("*.json"):
        out += [json.loads(line) for line in f.read_text().splitlines()]
    return out


def wait_records(gw, n, timeout=3):
    deadline = time.monotonic() + timeout
    while len(records(gw)) < n and time.monotonic() < deadline:
        gevent.sleep(0.02)
    return records(gw)


def never_answer(sock, req):
    gevent.sleep(30)


def stall_mid_stream(sock, req):
    sock.sendall(sse_head() + b"".join(chunk(e) for e in stream_events()[:4]))
    gevent.sleep(3)  # far beyond the gateway's 0.8 s read timeout


def close_mid_event(sock, req):
    events = stream_events()
    sock.sendall(sse_head() + b"".join(chunk(e) for e in events[:4]) + chunk(events[4][:20]))


def malformed_sse(sock, req):
    sock.sendall(sse_head() + chunk(b"event: message_start\ndata: {not json\n\n:::\n\ndata\n\n")
                 + chunk(b"event: message_stop\ndata: {}\n\n") + b"0\r\n\r\n")


def error_with_200(sock, req):
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    sock.sendall(response("200 OK", [("content-type", "application/json"),
                                     ("content-length", str(len(body)))], body))


def invalid_utf8(sock, req):
    body = b'{"type":"message","content":[{"type":"text","text":"\xff\xfe bad"}],"usage":{"input_tokens":3,"output_tokens":2}}'
    sock.sendall(response("200 OK", [("content-type", "application/json"),
                                     ("content-length", str(len(body)))], body))


def ten_mb(sock, req):
    text = "x" * (10 * 1024 * 1024)
    body = json.dumps({"type": "message", "content": [{"type": "text", "text": text}],
                       "usage": {"input_tokens": 7, "output_tokens": 3}}).encode()
    sock.sendall(response("200 OK", [("content-type", "application/json"),
                                     ("content-length", str(len(body)))], body))


def rate_limited(retry_after):
    def behave(sock, req):
        body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
        headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        if retry_after:
            headers.append(("retry-after", "9"))
        sock.sendall(response("429 Too Many Requests", headers, body))
    return behave


def html_page(sock, req):
    body = b"<html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"
    sock.sendall(response("502 Bad Gateway", [("content-type", "text/html"),
                                              ("content-length", str(len(body)))], body))


def one_byte_at_a_time(sock, req):
    trickle(sock, good_json(), 0.002)


def bad_chunk_size(sock, req):
    sock.sendall(sse_head() + b"".join(chunk(e) for e in stream_events()[:4]) + b"zz\r\nnot a size\r\n")
    gevent.sleep(3)  # a gateway that read on would time out instead (0.8 s)


def chunk_without_crlf(sock, req):
    events = stream_events()
    sock.sendall(sse_head() + b"".join(chunk(e) for e in events[:4]) + chunk(events[4])[:-2] + b"XX")
    gevent.sleep(3)


def bytes_after_the_last_chunk(sock, req):
    sock.sendall(sse_head() + b"".join(chunk(e) for e in stream_events()) + b"0\r\n\r\nHTTP/1.1 200")


def extensions_and_trailers(sock, req):
    sock.sendall(sse_head() + b"".join(b"%X;name=value\r\n%s\r\n" % (len(e), e) for e in stream_events())
                 + b"0\r\nx-trailer: 1\r\n\r\n")


CASES = {
    # name: (behaviour, stream?, check(response))
    "never answers": (never_answer, False, lambda r: r.status_code == 503 and r.json()["error"]["type"] == "overloaded_error"),
    "stalls mid-stream": (stall_mid_stream, True, lambda r: r.status_code == 200 and r.text.count("event: error") == 1
                          and r.text.rstrip().endswith("}") and "message_stop" not in r.text),
    "closes mid-event": (close_mid_event, True, lambda r: r.status_code == 200 and r.text.count("event: error") == 1),
    "malformed SSE": (malformed_sse, True, lambda r: r.status_code == 200 and "message_stop" in r.text),
    "JSON error with 200": (error_with_200, False, lambda r: r.status_code == 200 and r.json()["error"]["type"] == "overloaded_error"),
    "invalid UTF-8": (invalid_utf8, False, lambda r: r.status_code == 200 and b"\xff\xfe" in r.content),
    "gzip unasked": (gzip_json, False, lambda r: r.status_code == 200 and r.json()["content"][0]["text"] == "zipped"),
    "10 MB body": (ten_mb, False, lambda r: r.status_code == 200 and len(r.content) > 10 * 1024 * 1024),
    "429 with retry-after": (rate_limited(True), False, lambda r: r.status_code == 429 and r.headers["retry-after"] == "9"),
    "429 without retry-after": (rate_limited(False), False, lambda r: r.status_code == 429 and "retry-after" not in r.headers),
    "HTML error page": (html_page, False, lambda r: r.status_code == 502 and r.json()["error"]["message"] == "upstream answered HTTP 502"),
    "1 byte at a time": (one_byte_at_a_time, False, lambda r: r.status_code == 200 and r.json()["content"][0]["text"] == "fine"),
    "bad chunk size": (bad_chunk_size, True, lambda r: r.text.count("event: error") == 1
                       and "connection lost mid-stream" in r.text and "message_stop" not in r.text),
    "chunk without CRLF": (chunk_without_crlf, True, lambda r: r.text.count("event: error") == 1
                           and "connection lost mid-stream" in r.text),
    "bytes after the last chunk": (bytes_after_the_last_chunk, True, lambda r: r.status_code == 200
                                   and r.text.endswith('"message_stop"}\n\n') and "error" not in r.text),
    "chunk extensions and trailers": (extensions_and_trailers, True, lambda r: r.status_code == 200
                                      and r.text.endswith('"message_stop"}\n\n') and "trailer" not in r.text),
}


@pytest.mark.parametrize("name", list(CASES))
def test_upstream_fault(name, fgw, raw):
    behave, stream, check = CASES[name]
    if name == "gzip unasked":
        raw.behave = lambda sock, req: sock.sendall(gzip_json())
    else:
        raw.behave = behave
    r = call(fgw, stream=stream)
    assert check(r), (r.status_code, r.headers, r.text[:300])
    assert "sk-upstream-raw-123" not in r.text and raw.url not in r.text
    raw.behave = lambda sock, req: sock.sendall(good_json())
    gevent.sleep(0.1)
    assert call(fgw).status_code == 200  # the gateway keeps serving
    recs = wait_records(fgw, 2)
    assert len(recs) == 2 and len({r["requestId"] for r in recs}) == 2  # each billed once


def test_gzip_body_is_decoded_and_metered(fgw, raw):
    raw.behave = lambda sock, req: sock.sendall(gzip_json())
    r = call(fgw)
    assert "content-encoding" not in r.headers
    assert wait_records(fgw, 1)[0]["inputTokens"] == 25


def kept_alive_streams(served: list, tail: bytes = b""):
    """Chunked streams on kept-alive connections, one list of requests per connection in
    ``served``; ``tail``: bytes sent after each answer's last chunk."""
    head = sse_head().replace(b"connection: close\r\n", b"")

    def behave(sock, req):
        served.append([])
        while req:
            served[-1].append(req)
            sock.sendall(head + b"".join(chunk(e) for e in stream_events()) + b"0\r\n\r\n" + tail)
            req = read_request(sock)
    return behave


def test_chunked_streams_keep_their_upstream_connection(fgw, raw):
    served = []
    raw.behave = kept_alive_streams(served)
    for _ in range(3):
        assert call(fgw, stream=True).text.endswith('"message_stop"}\n\n')
    assert [len(requests_on) for requests_on in served] == [3]


def test_a_read_chunked_answer_frees_its_connection_at_once(raw):
    # In the gateway the answer object is dropped soon after, which would close it too; another
    # greenlet may take the connection from the pool before that.
    served = []
    raw.behave = kept_alive_streams(served)
    adapter, answers = make_adapter(4), []
    for _ in range(2):
        resp = adapter.send(prepare("POST", raw.url + "/v1/messages", {}, b"{}"), stream=True)
        assert b"".join(iter_raw(resp, decode=False)) == b"".join(stream_events())
        resp.raw.release_conn()
        answers.append(resp)  # still referenced when the next request takes the connection
    assert [len(requests_on) for requests_on in served] == [2]


def test_bytes_after_an_answer_retire_its_upstream_connection(fgw, raw):
    served = []
    raw.behave = kept_alive_streams(served, tail=b"HTTP/1.1 200 OK\r\n")
    for _ in range(2):
        assert call(fgw, stream=True).text.endswith('"message_stop"}\n\n')
    assert [len(requests_on) for requests_on in served] == [1, 1]


def test_half_a_chunk_reaches_the_client_before_the_rest_is_sent(fgw, raw):
    events = stream_events()
    delta = chunk(events[2])
    half = events[2][:events[2].index(b'"index"')]  # ends in ', ': no secret starts so
    cut = delta.index(half) + len(half)
    client_has_half, rest_sent = gevent.event.Event(), []

    def behave(sock, req):
        sock.sendall(sse_head() + b"".join(chunk(e) for e in events[:2]) + delta[:cut])
        client_has_half.wait(3)
        rest_sent.append(True)
        sock.sendall(delta[cut:] + b"".join(chunk(e) for e in events[3:]) + b"0\r\n\r\n")
    raw.behave = behave
    r = requests.post(fgw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={**ASK, "stream": True}, timeout=10, stream=True)
    got = b""
    for piece in r.iter_content(chunk_size=None):
        got += piece
        if got.endswith(half):
            assert not rest_sent
            client_has_half.set()
    assert client_has_half.is_set() and got == b"".join(events)


def test_streams_waiting_on_their_upstream_hold_no_read_buffers(make_gateway, raw):
    # A read that waits for the socket with a fresh READ_SIZE buffer would hold 64 kB for each
    # stream open (what resident memory showed at 500 streams): the wait is in the reader's own.
    gw = make_gateway([{"id": "raw", "url": raw.url, "key": "sk-upstream-raw-123"}])
    events, release = stream_events(), gevent.event.Event()

    def behave(sock, req):
        sock.sendall(sse_head() + b"".join(chunk(e) for e in events[:3]))
        release.wait(5)
        sock.sendall(b"".join(chunk(e) for e in events[3:]) + b"0\r\n\r\n")
    raw.behave = behave
    tracemalloc.start()
    try:
        streams = [requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                                 json={**ASK, "stream": True}, timeout=10, stream=True) for _ in range(10)]
        pieces = [r.iter_content(chunk_size=None) for r in streams]
        firsts = [next(p) for p in pieces]
        assert all(b"message_start" in first for first in firsts)
        gevent.sleep(0.1)  # each relay is now waiting on its upstream
        in_reads = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, attempt.__file__)])
        held = sum(stat.size for stat in in_reads.statistics("filename"))
    finally:
        tracemalloc.stop()
        release.set()
    assert held < 10 * 4096
    assert all((first + b"".join(rest)).endswith(b'"message_stop"}\n\n')
               for first, rest in zip(firsts, pieces))


def test_refused_connections(make_gateway):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    gw = make_gateway([{"id": "gone", "url": f"http://127.0.0.1:{port}", "key": "k" * 12}])
    r = call(gw)
    assert r.status_code == 503 and r.json()["type"] == "error"
    assert wait_records(gw, 1)[0]["statusCode"] == 503


def describe_fds() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        out.append(target)
    return sorted(out)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_descriptor_or_greenlet_leaks_over_500_faulty_requests(fgw, raw):
    behaviours = [close_mid_event, rate_limited(True), html_page, stall_mid_stream, error_with_200]
    session = requests.Session()

    def one(i):
        raw.behave = behaviours[i % len(behaviours)]
        session.post(fgw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                     json={**ASK, "stream": i % 2 == 0}, timeout=10).content

    def batch(n):
        gevent.pool.Pool(20).map(one, range(n))
        gevent.sleep(3.5)  # the mock's stalled handlers let go of their sockets
        return open_fds()

    # Warm up at the same concurrency: keep-alive pools fill up to their steady size.
    before = batch(100)
    batch(500)
    session.close()
    # A leak stays; sockets other tests of this process are still closing go within seconds.
    deadline = time.monotonic() + 10
    while open_fds() - before > 3 and time.monotonic() < deadline:
        gevent.sleep(0.5)
    assert open_fds() - before <= 3, "; ".join(describe_fds())
    assert fgw.gateway.in_flight == 0 and fgw.gateway.pool.states[0].in_flight == 0
    assert len(wait_records(fgw, 600)) == 600
    import gc
    from gevent import Greenlet
    assert sum(isinstance(o, Greenlet) and not o.dead for o in gc.get_objects()) < 30


# -- misbehaving clients --------------------------------------------------------------------------
def raw_request(gw, body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            + f"x-api-key: {TENANT_KEY}\r\ncontent-length: {len(data)}\r\n\r\n".encode() + data)


def test_client_gone_before_headers_is_billed_once(fgw, raw):
    def slow(sock, req):
        gevent.sleep(0.5)
        sock.sendall(good_json())
    raw.behave = slow
    s = socket.create_connection(("127.0.0.1", fgw.server.server_port))
    s.sendall(raw_request(fgw, ASK))
    gevent.sleep(0.1)
    s.close()
    recs = wait_records(fgw, 1, 3)
    assert len(recs) == 1 and fgw.gateway.in_flight == 0
    gevent.sleep(0.6)
    assert len(records(fgw)) == 1


def test_client_gone_during_failover(make_gateway, raw):
    slow_fail = RawUpstream()

    def fail_slowly(sock, req):
        gevent.sleep(0.3)
        html_page(sock, req)
    slow_fail.behave = fail_slowly
    gw = make_gateway([{"id": "slowfail", "url": slow_fail.url, "key": "k" * 12},
                       {"id": "raw", "url": raw.url, "key": "k" * 12}])
    try:
        s = socket.create_connection(("127.0.0.1", gw.server.server_port))
        s.sendall(raw_request(gw, ASK))
        gevent.sleep(0.1)
        s.close()
        assert len(wait_records(gw, 1, 3)) == 1
        assert call(gw).status_code == 200
    finally:
        slow_fail.stop()


def test_slowloris_is_cut_off_and_others_are_served(fgw, monkeypatch):
    import ccgate.http.server
    monkeypatch.setattr(ccgate.http.server, "HEAD_TIMEOUT_S", 1.0)
    s = socket.create_connection(("127.0.0.1", fgw.server.server_port))
    s.sendall(b"POST /anthropic/v1/messages HTTP/1.1\r\n")
    started = time.monotonic()
    closed = False
    for byte in b"x-api-key: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n":
        try:
            s.sendall(bytes([byte]))
        except OSError:
            closed = True
            break
        assert call(fgw, timeout=2).status_code == 200 if byte == ord("x") else True
        gevent.sleep(0.1)
        s.settimeout(0.01)
        try:
            if s.recv(1) == b"":
                closed = True
                break
        except socket.timeout:
            pass
        except OSError:
            closed = True
            break
    assert closed and time.monotonic() - started < 3
    s.close()


def test_thousand_idle_keepalive_connections(fgw):
    # from another address than the call below: one address may hold 256 (maxConnectionsPerIP)
    idle = [socket.create_connection(("127.0.0.1", fgw.server.server_port),
                                     source_address=("127.0.0.2", 0)) for _ in range(1000)]
    try:
        started = time.monotonic()
        assert call(fgw).status_code == 200
        assert time.monotonic() - started < 2
    finally:
        for s in idle:
            s.close()


def test_pipelined_requests(fgw):
    s = socket.create_connection(("127.0.0.1", fgw.server.server_port))
    s.sendall(raw_request(fgw, ASK) + raw_request(fgw, ASK))
    data = b""
    deadline = time.monotonic() + 5
    while data.count(b"HTTP/1.1 200") < 2 and time.monotonic() < deadline:
        s.settimeout(1)
        try:
            chunk_ = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk_:
            break
        data += chunk_
    s.close()
    assert data.count(b"HTTP/1.1 200") == 2


# -- the process ----------------------------------------------------------------------------------
def test_kill_9_under_load_then_restart_keeps_usage_consistent(make_mock, tmp_path):
    mock = make_mock("m")
    mock.event_delay_s = 0.05
    config = write_config(tmp_path / "c", [{"id": "m", "url": mock.url, "key": "k" * 12}])
    port = free_port()
    cmd = [sys.executable, str(ROOT / "app.py"), "--config-dir", str(config), "--data-dir",
           str(tmp_path / "data"), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_up(url + "/health")

    def one(i):
        try:
            requests.post(url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                          json={**ASK, "stream": i % 2 == 0}, timeout=10).content
        except requests.RequestException:
            pass

    pool = gevent.pool.Pool(200)
    for i in range(200):
        pool.spawn(one, i)
    deadline = time.monotonic() + 10
    while not list((tmp_path / "data" / "usage").rglob("*.json")) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    gevent.sleep(0.3)  # some requests done, many still streaming
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    pool.join(timeout=15)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(url + "/health")
        lines = [line for f in (tmp_path / "data" / "usage").rglob("*.json")
                 for line in f.read_bytes().split(b"\n") if line.strip()]
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                pass  # at most a torn last line, skipped by the reader too
        assert len(lines) - len(parsed) <= 1
        assert 0 < len(parsed) <= 200
        today = requests.get(url + "/usage", headers={"x-api-key": TENANT_KEY}).json()["today"]
        assert today["requests"] == len(parsed)
        assert today["costUSD"] == pytest.approx(sum(r["totalCost"] for r in parsed), abs=1e-9)
        assert requests.post(url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                             json=ASK).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)



