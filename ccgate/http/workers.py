"""``python app.py --workers N``: N gateway processes serving one port, one supervisor.

The supervisor binds one listening socket per worker on the same port (``SO_REUSEPORT``) and
starts each worker as a fresh ``python app.py`` that inherits its own (``--listen-fd``); every
worker runs ``ccgate/http/server.py`` with all its protections. Fresh processes rather than
forks: nothing of the supervisor's threads, greenlets or imported state (Prometheus decides its
multiprocess mode at import) leaks into a worker.

Why a socket per worker: with one shared socket, whichever worker is awake first takes a whole
burst of new connections (gevent accepts up to 100 at a time), and kept-alive connections stay
where they landed. A client that opens its connections while one worker is still starting, or
in one burst, then keeps all its traffic on one core (measured: two workers served 0.95x one
worker's requests). With ``SO_REUSEPORT`` the kernel spreads new connections evenly over the
sockets, whether or not their worker is up yet; those of a worker that is starting (or being
restarted) wait in its socket's queue, which the supervisor keeps open, instead of being
refused. Before taking the port the supervisor binds it once without ``SO_REUSEPORT``, so a
port already in use is refused as before, even by another gateway that also uses the option.

- A worker that dies is started again (after 1 s; after five deaths within 10 s of their starts
  in a row the supervisor gives up and exits 1, saying why: a crash loop).
- ``SIGHUP`` is passed to every worker (each reloads its config; each also watches the files).
- ``SIGTERM``/``SIGINT`` are passed to every worker, which drains (``server.shutdownGrace``);
  the supervisor waits for them, then exits.
- Each worker gets ``CCGATE_WORKERS`` (so limits are kept across workers: ``shared/ledger.py``)
  and ``PROMETHEUS_MULTIPROC_DIR`` (so ``/metrics`` sums the workers), a private directory the
  supervisor empties at start and removes at exit.
- The first-run bootstrap has already happened in the supervisor: workers find the config.
- A worker whose supervisor is gone (killed with SIGKILL or by the OOM killer, so nothing passed
  SIGTERM on) drains and exits within a second or so (``watch_supervisor``): no orphan keeps
  the port, and a restarted gateway can bind it.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable

import gevent

from ..core.periodic import Periodic

log = logging.getLogger("ccgate")
SUPERVISOR_PID_ENV = "CCGATE_SUPERVISOR_PID"
CRASH_WINDOW_S = 10.0  # a worker dying this soon after its start counts toward a crash loop
CRASH_LOOP = 5


def worker_count(setting: object) -> int:
    """``server.workers`` / ``--workers``: a number, or ``auto`` (the cores this process may use)."""
    if setting in (None, ""):
        return 1
    if setting == "auto":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    count = int(setting)
    if count < 1:
        raise ValueError("workers must be 1 or more, or auto")
    return count


class Supervisor:
    """Starts a worker on each of ``listeners`` (one port) and keeps them running."""

    def __init__(self, listeners: list[socket.socket], argv: list[str], grace_s: float):
        self.listeners, self.argv, self.grace_s = listeners, argv, grace_s
        self.count = len(listeners)
        self.stopping = False
        self.workers: list[subprocess.Popen | None] = [None] * self.count
        self.started: list[float] = [0.0] * self.count
        self.crashes = 0
        self.metrics_dir = tempfile.mkdtemp(prefix="ccgate-metrics-")  # 0700, empty

    def _spawn(self, index: int) -> None:
        fd = self.listeners[index].fileno()
        env = {**os.environ, "CCGATE_WORKERS": str(self.count), "CCGATE_WORKER_INDEX": str(index),
               SUPERVISOR_PID_ENV: str(os.getpid()), "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}
        self.workers[index] = subprocess.Popen(self.argv + ["--listen-fd", str(fd)], env=env,
                                               pass_fds=(fd,))
        self.started[index] = time.monotonic()

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker is not None and worker.poll() is None:
                worker.send_signal(signum)

    def _stop(self, signum: int) -> None:
        if not self.stopping:
            log.info("supervisor: stopping %d workers (they drain for up to %.0f s)",
                     self.count, self.grace_s)
        self.stopping = True
        self._signal_all(signum)
        for listener in self.listeners:  # once the workers close theirs, new clients are refused
            listener.close()

    def run(self) -> int:
        """Serve until told to stop; the exit status."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(sig, self._stop, sig)
        gevent.signal_handler(signal.SIGHUP, self._signal_all, signal.SIGHUP)
        try:
            for index in range(self.count):
                self._spawn(index)
            log.info("supervisor (pid %d): %d workers on one port", os.getpid(), self.count)
            return self._watch()
        finally:
            self._reap()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _watch(self) -> int:
        while not self.stopping:
            gevent.sleep(0.2)
            for index, worker in enumerate(self.workers):
                code = worker.poll() if worker is not None else None
                if code is None or self.stopping:
                    continue
                quick = time.monotonic() - self.started[index] < CRASH_WINDOW_S
                self.crashes = self.crashes + 1 if quick else 0
                log.error("supervisor: worker %d (pid %d) exited with %s; starting it again",
                          index, worker.pid, code)
                if self.crashes >= CRASH_LOOP:
                    log.error("supervisor: workers keep dying right after they start (a crash "
                              "loop): giving up; error.log says why")
                    self._stop(signal.SIGTERM)
                    return 1
                gevent.sleep(1.0)
                if not self.stopping:  # a SIGTERM during the pause starts nothing more
                    self._spawn(index)
        return 0

    def _reap(self) -> None:
        """Wait for the workers' drain, then end what is left."""
        deadline = time.monotonic() + self.grace_s + 10
        for worker in self.workers:
            if worker is None:
                continue
            try:
                worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("supervisor: worker pid %d did not stop in time: killed", worker.pid)
                worker.kill()
                worker.wait()


def watch_supervisor(on_orphaned: Callable[[], None]) -> Periodic | None:
    """In a worker: ``on_orphaned()`` once, when its supervisor is no longer its parent."""
    supervisor = int(os.environ.get(SUPERVISOR_PID_ENV) or 0)
    if not supervisor:
        return None  # started by hand with --listen-fd: nobody to watch
    fired: list[bool] = []

    def check() -> None:
        if os.getppid() != supervisor and not fired:
            fired.append(True)
            log.error("worker: the supervisor (pid %d) is gone: draining and stopping",
                      supervisor)
            on_orphaned()
    return Periodic("supervisor watch", 1.0, check).start()


def listen(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on ``host:port``, one per worker (inheritable)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:  # refused if anything holds the port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    listeners = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(2048)
            sock.set_inheritable(True)
    except OSError:
        for sock in listeners:
            sock.close()
        raise
    return listeners


def supervise(count: int, host: str, port: int, argv: list[str], grace_s: float) -> int:
    try:
        listeners = listen(host, port, count)
    except OSError as e:
        print(f"CCGate not started: cannot listen on {host}:{port}: {e.strerror} (another "
              f"process has the port? try --port)", file=sys.stderr)
        return 1
    return Supervisor(listeners, argv, grace_s).run()
