"""Real servers for the e2e tests: free loopback ports, a running gateway, a private Redis, and
waiting for them (the pure helpers are in ``tests/helpers.py``)."""
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import gevent
import requests

from ccgate.http.server import make_server

REDIS = shutil.which("redis-server")
_HANDED_OUT: set[int] = set()  # ports free_port gave out in this run


def free_port() -> int:
    """A port nothing listens on, never handed out before in this run, below the kernel's
    ephemeral range. A port from ``bind(port 0)`` comes from that range, so an outgoing connection
    could take it before the server it was meant for binds (CI once saw Caddy fail that way)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    while True:
        port = random.randrange(max(1024, low - 12000), low)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("", port))  # the wildcard address: taken if anything holds the port
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


def wait_up(url: str, timeout: float = 20) -> None:
    """Wait until ``url`` answers at all (a gateway process finished starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            assert time.monotonic() < deadline, f"{url} did not come up"
            gevent.sleep(0.1)


def wait_until(predicate, timeout: float = 8.0) -> None:
    """Wait (yielding to the servers' greenlets) until ``predicate()`` is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        gevent.sleep(0.05)


class RunningGateway:
    """A gateway app served by gevent on a free loopback port."""

    def __init__(self, app):
        self.app = app
        self.server = make_server(app, "127.0.0.1", 0, log=None, error_log=None,
                                  max_connections=app.extensions["ccgate"].config.max_connections)
        self.server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def gateway(self):
        return self.app.extensions["ccgate"]

    def stop(self) -> None:
        self.server.stop(timeout=1)
        self.gateway.close()


class RedisServer:
    """A private redis-server on a free loopback port, without persistence."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                gevent.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
