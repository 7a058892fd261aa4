"""Active health checks: one background greenlet probing each upstream on its own interval.

The default probe is ``GET <url>/v1/models`` with the upstream's credentials: it spends no tokens,
and mirror sites that have no ``/health`` still answer it.
"""
from __future__ import annotations

import logging
import time

import gevent
import requests

from ..core.errors import ANTHROPIC_VERSION
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
        self._greenlet: gevent.Greenlet | None = None

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

    def run(self) -> None:
        due = {s.id: 0.0 for s in self.pool.states}
        running: dict[str, gevent.Greenlet] = {}
        while True:
            now = time.monotonic()
            for s in self.pool.states:
                enabled, _, interval, _ = self.settings(s)
                if not enabled or not s.config.enabled or due[s.id] > now:
                    continue
                due[s.id] = now + interval
                if s.id not in running or running[s.id].dead:  # a slow probe is not doubled up
                    running[s.id] = gevent.spawn(self.probe, s)
            waits = [due[s.id] for s in self.pool.states if self.settings(s)[0] and s.config.enabled]
            gevent.sleep(max(0.05, min(waits) - time.monotonic()) if waits else 60)

    def start(self) -> None:
        self._greenlet = gevent.spawn(self.run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self.session.close()
