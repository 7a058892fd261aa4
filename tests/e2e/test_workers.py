"""Issue 34: ``python app.py --workers 2``: one port, two processes each running
``ccgate/http/server.py``, limits that hold across them, a supervisor that restarts a dead worker
and drains all on SIGTERM."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gevent
import gevent.pool
import pytest
import requests

from tests.e2e.servers import free_port, wait_up, wait_until
from tests.helpers import ROOT, TENANT_KEY, upstream_entry, write_config
from tests.mock_wire import message, message_events

ASK = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return sorted(out)


@pytest.fixture
def workers(tmp_path, upstream):
    port = free_port()
    config = write_config(tmp_path / "config", [upstream_entry(upstream)], server={
        "server": {"port": port, "workers": 2, "shutdownGrace": 5},
        "metrics": {"token": "scrape-token-1"}},
        tenants=[{"id": "t", "key": TENANT_KEY, "limits": {"rpm": 6, "concurrency": 1}}])
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config-dir", str(config),
                             "--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_up(url + "/health", timeout=30)
    wait_until(lambda: len(children(proc.pid)) == 2, 20)
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def post(url) -> int:
    return requests.post(url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                         json=ASK, timeout=10).status_code


def test_limits_hold_across_workers_and_metrics_sum_them(workers, upstream):
    proc, url = workers
    upstream.handler = lambda req: (gevent.sleep(0.3), upstream.default(req))[1]
    # concurrency 1 for the tenant, whichever worker each connection lands on
    statuses = gevent.pool.Pool(4).map(lambda _: post(url), range(4))
    assert sorted(statuses).count(200) == 1 and statuses.count(429) == 3
    upstream.handler = upstream.default
    served = sum(post(url) == 200 for _ in range(8))  # rpm 6 across both workers
    assert served == 5  # 1 + 5 = 6 in the minute

    def served_total() -> float:
        text = requests.get(url + "/metrics",
                            headers={"authorization": "Bearer scrape-token-1"}).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("ccgate_requests_total{") and 'status="200"' in line)
    wait_until(lambda: served_total() == 6, 3)  # each worker counts within half a second


def test_each_worker_has_the_strict_server(workers):
    proc, url = workers
    port = int(url.rsplit(":", 1)[1])
    for _ in range(6):  # connections spread over the workers
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /health HTTP/1.1\r\n\r\n")
        s.settimeout(5)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        assert data.startswith(b"HTTP/1.1 400 ") and data.count(b"HTTP/1.1") == 1


def test_a_dead_worker_is_replaced_and_sigterm_drains_all(workers, upstream):
    proc, url = workers
    first = children(proc.pid)
    os.kill(first[0], signal.SIGKILL)
    wait_until(lambda: len(set(children(proc.pid)) - set(first)) == 1, 15)
    assert requests.get(url + "/health").status_code == 200
    events = message_events(message("claude-sonnet-4-5", [{"type": "text", "text": "slow"}]))
    upstream.handler = lambda req: upstream.stream(events, delay_s=0.3)
    result = {}

    def stream():
        with requests.post(url + "/anthropic/v1/messages", stream=True,
                           headers={"x-api-key": TENANT_KEY}, json={**ASK, "stream": True}) as r:
            result["body"] = b"".join(r.iter_content(None))
    g = gevent.spawn(stream)
    gevent.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    g.join(15)
    assert b"message_stop" in result["body"]  # the stream in flight finished
    code = proc.wait(20)
    log = proc.stdout.read().decode(errors="replace")
    assert code == 0 and time.monotonic() - started < 15, log[-3000:]
    assert children(proc.pid) == []
