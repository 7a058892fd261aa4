"""Active health checks: one background greenlet probing each upstream on its own interval.

The default probe is ``GET <url>/v1/models`` with the upstream's credentials: it spends no tokens,
and mirror sites that have no ``/health`` still answer it.
"""
from __future__ import annotations

import logging
import time

import gevent
import gevent.pool
import requests

from ..core.errors import ANTHROPIC_VERSION
from ..core.periodic import Periodic
from ..config.settings import CONNECT_TIMEOUT_S, LoadBalancerConfig
from .pool import Pool, UpstreamState

log = logging.getLogger("ccgate.health")


def probe_verdict(status: int | None, error: str | None = None) -> tuple[bool, str | None]:
    """Whether a probe answer means "reachable", and the reason shown when it does not."""
    if status is None:
        return False, error or "unreachable"
    if status in (401, 403):
        return False, f"credentials rejected (HTTP {status})"
    if status >= 500:
        return False, f"probe answered HTTP {status}"
    return True, None


class HealthChecker:
    """Probes every upstream whose health check is enabled, reporting results to the pool."""

    def __init__(self, pool: Pool, lb: LoadBalancerConfig):
        self.pool = pool
        self.lb = lb
        self.session = requests.Session()
        self.session.trust_env = False
        self._due: dict[str, float] = {}  # upstream -> when its next probe is due
        self._running: dict[str, gevent.Greenlet] = {}  # upstream -> its probe in flight
        self._probes = gevent.pool.Group()  # probes run in parallel; owned here, killed on stop
        self._loop = Periodic("health checks", 0.05, self.due_probes)

    def settings(self, s: UpstreamState) -> tuple[bool, str, float, float]:
        """enabled, path, interval (s), timeout (s) for one upstream."""
        hc = s.config.health_check
        return (hc.get("enabled", True), hc.get("path", self.lb.health_path),
                float(hc.get("interval", self.lb.health_interval_s)),
                hc["timeout"] / 1000.0 if "timeout" in hc else self.lb.health_timeout_s)

    def probe(self, s: UpstreamState) -> None:
        _, path, interval, timeout = self.settings(s)
        headers = {"anthropic-version": ANTHROPIC_VERSION, **s.config.auth_headers}
        try:
            resp = self.session.get(s.config.url + path, headers=headers, allow_redirects=False,
                                    timeout=(min(CONNECT_TIMEOUT_S, timeout), timeout))
            resp.close()
            ok, reason = probe_verdict(resp.status_code)
        except requests.exceptions.Timeout:
            ok, reason = probe_verdict(None, "probe timed out")
        except requests.exceptions.RequestException as e:
            ok, reason = probe_verdict(None, f"unreachable ({type(e).__name__})")
        if ok == s.probe_down or reason != s.probe_reason:
            log.log(logging.INFO if ok else logging.WARNING, "upstream %s is %s", s.id,
                    "up" if ok else f"down: {reason}")
        self.pool.probe_result(s, ok, reason, valid_s=3 * interval)

    def due_probes(self) -> float:
        """Start the probes that are due (a slow one is not doubled up); seconds to the next."""
        now = time.monotonic()
        for s in self.pool.states:
            enabled, _, interval, _ = self.settings(s)
            if not enabled or not s.config.enabled or self._due.get(s.id, 0.0) > now:
                continue
            if s.config.key_problem():
                # The first run's placeholder: probing would send it to the real API, where it
                # can only fail (the dashboard says why the upstream is not probed).
                self._due[s.id] = now + interval
                continue
            self._due[s.id] = now + interval
            if s.id not in self._running or self._running[s.id].dead:
                self._running[s.id] = self._probes.spawn(self.probe, s)
        waits = [self._due.get(s.id, 0.0) for s in self.pool.states
                 if self.settings(s)[0] and s.config.enabled]
        return max(0.05, min(waits) - time.monotonic()) if waits else 60.0

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
        self._probes.kill(block=False)
        self.session.close()
