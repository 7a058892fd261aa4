"""Issue 34: ``python app.py --workers 2``: one port, two processes each running
``ccgate/http/server.py``, limits that hold across them, a supervisor that restarts a dead worker
and drains all on SIGTERM."""
import contextlib
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
        "server": {"port": port, "workers": 2, "shutdownGrace": 5, "bodyTimeout": 500},
        "metrics": {"token": "scrape-token-1"}},
        tenants=[{"id": "t", "key": TENANT_KEY, "limits": {"rpm": 6, "concurrency": 1}}])
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config-dir", str(config),
                             "--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_up(url + "/health", timeout=30)
    wait_until(lambda: len(children(proc.pid)) == 2, 20)
    first = children(proc.pid)
    yield proc, url
    workers = set(first) | set(children(proc.pid))  # restarted ones too
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in workers:  # none may be left behind (a test that kills the supervisor checks it)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


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


def accepted_by(pids: list[int], server_port: int, client_port: int) -> int | None:
    """The worker holding the server end of the connection from ``client_port``, if accepted."""
    wanted = f":{server_port:04X} 0100007F:{client_port:04X} 01 "  # established, to us
    inode = next((line.split()[9] for line in Path("/proc/net/tcp").read_text().splitlines()
                  if wanted in line), None)
    for pid in pids if inode else []:
        try:
            fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if f"socket:[{inode}]" in fds:
            return pid
    return None


def by_worker(proc, port: int, sockets: list[socket.socket]) -> dict[int, list[socket.socket]]:
    """``sockets`` grouped by the worker that accepted each (all must be accepted)."""
    pids, owners = children(proc.pid), {}
    for s in sockets:
        deadline = time.monotonic() + 10
        while (pid := accepted_by(pids, port, s.getsockname()[1])) is None:
            assert time.monotonic() < deadline, "a connection no worker accepted"
            gevent.sleep(0.02)
        owners.setdefault(pid, []).append(s)
    return owners


def one_per_worker(proc, port: int) -> list[socket.socket]:
    """A connection to each worker (connections that landed twice on one are closed)."""
    chosen: dict[int, socket.socket] = {}
    while len(chosen) < 2:
        s = socket.create_connection(("127.0.0.1", port))
        (pid,) = by_worker(proc, port, [s])
        if pid in chosen:
            s.close()
        chosen.setdefault(pid, s)
    return list(chosen.values())


def read_all(s: socket.socket, timeout: float = 10) -> tuple[bytes, float]:
    """Everything until the server closes, and how long that took."""
    started, data = time.monotonic(), b""
    s.settimeout(timeout)
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data, time.monotonic() - started


def test_each_worker_has_the_strict_parser_and_the_timeouts(workers):
    proc, url = workers
    port = int(url.rsplit(":", 1)[1])
    for s in one_per_worker(proc, port):  # two Host headers, then a smuggled second request
        s.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /health HTTP/1.1\r\n\r\n")
        data, _ = read_all(s)
        assert data.startswith(b"HTTP/1.1 400 ") and data.count(b"HTTP/1.1") == 1
    stalled = one_per_worker(proc, port)  # a body that stops: 408 after server.bodyTimeout
    for s in stalled:
        s.sendall(b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " +
                  TENANT_KEY.encode() + b"\r\nContent-Length: 100\r\n\r\n{")
    for data, took in gevent.pool.Pool(2).map(read_all, stalled):
        assert data.startswith(b"HTTP/1.1 408") and 0.4 < took < 4, (data[:200], took)
    keyless = one_per_worker(proc, port)  # after a request without a valid key: 5 s idle, closed
    for s in keyless:
        s.sendall(b"GET /anthropic/v1/models HTTP/1.1\r\nHost: x\r\nx-api-key: nope\r\n\r\n")
    for data, took in gevent.pool.Pool(2).map(read_all, keyless):
        assert data.startswith(b"HTTP/1.1 401") and 4 < took < 12, (data[:200], took)


def test_connections_opened_while_a_worker_restarts_still_spread(workers, upstream):
    """A socket per worker: a burst that arrives while one worker is down waits for it, instead of
    all landing (and, kept alive, staying) on the other: with one shared socket all 20 did."""
    proc, url = workers
    port = int(url.rsplit(":", 1)[1])
    os.kill(children(proc.pid)[0], signal.SIGKILL)
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    ask = (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    for s in sockets:
        s.sendall(ask)
    for s in sockets:  # every one is answered: by the survivor, or by the restarted worker
        s.settimeout(15)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    wait_until(lambda: len(children(proc.pid)) == 2, 15)
    owners = by_worker(proc, port, sockets)
    assert len(owners) == 2 and min(map(len, owners.values())) >= 3, \
        {pid: len(s) for pid, s in owners.items()}
    for s in sockets:
        s.close()


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


def test_workers_of_a_killed_supervisor_drain_and_exit(workers):
    """SIGKILL (or the OOM killer) gives the supervisor no chance to pass SIGTERM on: its workers
    notice it is gone and stop, so no orphan keeps the port."""
    proc, url = workers
    pids = children(proc.pid)
    proc.kill()
    proc.wait()
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() and
                               Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
                               for pid in pids), 10)
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=2)
