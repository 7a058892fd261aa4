"""Delivering alerts without ever slowing a request.

``emit`` only dedupes and enqueues (a bounded queue: when it is full the alert is dropped and
logged). A worker greenlet owned here hands each alert to a bounded pool of delivery greenlets,
one per target, which retry with backoff for up to ``RETRY_FOR_S``. The same event for the same
subject goes out at most once per ``DEDUPE_S``; with several instances the claim is made in
Redis, so each event is sent once, not once per instance.
"""
from __future__ import annotations

import logging
import time

import gevent
import gevent.pool
import gevent.queue
import requests

from ..config.settings import AlertsConfig, CONNECT_TIMEOUT_S
from ..usage.record import iso_utc
from .messages import Alert, accepted, delivery, describe

log = logging.getLogger("ccgate.alerts")
QUEUE_SIZE = 1000
DELIVERY_GREENLETS = 20
DEDUPE_S = 600.0
RETRY_FOR_S = 600.0
FIRST_RETRY_S = 2.0
SEND_TIMEOUT_S = 10.0


class AlertSender:
    def __init__(self, config: AlertsConfig, shared):
        self.config = config
        self.shared = shared  # SharedState: ``claim`` dedupes across instances
        self.session = requests.Session()
        self.session.trust_env = False
        self.queue: gevent.queue.Queue = gevent.queue.Queue(maxsize=QUEUE_SIZE)
        self.deliveries = gevent.pool.Pool(DELIVERY_GREENLETS)
        self.sent = 0  # deliveries the targets accepted (for tests and /metrics)
        self._worker: gevent.Greenlet | None = None

    def configure(self, config: AlertsConfig) -> None:
        self.config = config

    def emit(self, alert: Alert) -> bool:
        """Queue ``alert`` unless its event is off, it was sent recently, or there is nowhere to
        send it; True when queued. Never blocks, never raises."""
        if not self.config.targets or alert.event not in self.config.events:
            return False
        if not self.shared.claim(f"alert:{alert.event}:{alert.subject}",
                                 alert.dedupe_s or DEDUPE_S):
            return False
        try:
            self.queue.put_nowait(alert)
            return True
        except gevent.queue.Full:
            log.error("alert %s dropped: %d alerts are already waiting", alert.event, QUEUE_SIZE)
            return False

    def send_now(self, alert: Alert) -> list[dict]:
        """One attempt to every target, answered (``POST /admin/api/alerts/test``)."""
        return [{"target": describe(t), **self._attempt(t, alert)} for t in self.config.targets]

    def _attempt(self, target: dict, alert: Alert) -> dict:
        url, headers, body = delivery(target, alert, gateway=self.config.gateway_name,
                                      language=self.config.language, now_iso=iso_utc(time.time()))
        try:
            resp = self.session.post(url, data=body, headers=headers, allow_redirects=False,
                                     timeout=(CONNECT_TIMEOUT_S, SEND_TIMEOUT_S))
        except requests.RequestException as e:
            return {"ok": False, "status": None, "error": type(e).__name__}
        ok = accepted(target["type"], resp.status_code, resp.content[:65536])
        return {"ok": ok, "status": resp.status_code, "error": None if ok else "refused"}

    def _deliver(self, target: dict, alert: Alert) -> None:
        wait, give_up = FIRST_RETRY_S, time.monotonic() + RETRY_FOR_S
        while True:
            result = self._attempt(target, alert)
            if result["ok"]:
                self.sent += 1
                return
            if time.monotonic() + wait > give_up:
                log.error("alert %s to %s not delivered after %.0f s (last: %s)", alert.event,
                          describe(target), RETRY_FOR_S, result["error"] or result["status"])
                return
            log.warning("alert %s to %s failed (%s); retrying in %.0f s", alert.event,
                        describe(target), result["error"] or f"HTTP {result['status']}", wait)
            gevent.sleep(wait)
            wait = min(wait * 2, 120.0)

    def _run(self) -> None:
        while True:
            alert = self.queue.get()
            for target in self.config.targets:
                self.deliveries.spawn(self._deliver_logged, target, alert)

    def _deliver_logged(self, target: dict, alert: Alert) -> None:
        try:
            self._deliver(target, alert)
        except Exception:
            log.exception("alert delivery to %s failed", describe(target))

    def start(self) -> None:
        self._worker = gevent.spawn(self._run)
        self._worker.link_exception(lambda g: log.error("the alert worker died: %s", g.exception))

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.kill(block=False)
        self.deliveries.kill(block=False)
        self.session.close()
