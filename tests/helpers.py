"""Small helpers shared by the test modules (loopback ports, waiting for a process to serve)."""
import socket
import time

import gevent
import requests


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
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
