"""HTTP basic auth for the admin dashboard and its API (flask-httpauth).

A password hash (scrypt, ~130 ms of CPU) is never checked on the event loop: it runs in gevent's
thread pool (hashlib releases the GIL), at most ``HASH_CHECKS_AT_ONCE`` at a time so a flood of
guesses queues instead of taking every core, and a verified login is remembered for
``VERIFIED_FOR_S`` (by a digest of the stored hash, the name and the password: a changed
password, or another one, is checked again). The dashboard's five calls every 10 s then cost
one hash check per ``VERIFIED_FOR_S``.
"""
from __future__ import annotations

import hashlib
import time

import gevent
from gevent.lock import BoundedSemaphore
from ..http.server import AUTHENTICATED_KEY
from flask import request
from flask_httpauth import HTTPBasicAuth
from werkzeug.security import check_password_hash

from ..core.errors import GatewayError
from ..tenants import same_secret
from ..core.throttle import FailureThrottle
from .request import current_gateway

HASH_PREFIXES = ("scrypt:", "pbkdf2:")
HASH_CHECKS_AT_ONCE = 2
VERIFIED_FOR_S = 300.0
_hash_checks = BoundedSemaphore(HASH_CHECKS_AT_ONCE)
_verified: dict[bytes, float] = {}  # digest of (stored, username, password) -> until (monotonic)

auth = HTTPBasicAuth(realm="CCGate admin")


def password_matches(stored: str, given: str) -> bool:
    """``admin.password`` may be plain text or a werkzeug hash (``scrypt:…``/``pbkdf2:…``),
    checked off the event loop."""
    if stored.startswith(HASH_PREFIXES):
        with _hash_checks:
            return gevent.get_hub().threadpool.apply(check_password_hash, (stored, given))
    return same_secret(stored, given)


def _login_ok(stored: str, username: str, password: str, expected_user: str) -> bool:
    key = hashlib.sha256("\0".join((stored, username, password)).encode()).digest()
    now = time.monotonic()
    if _verified.get(key, 0.0) > now:
        return True
    ok = same_secret(expected_user, username) & (bool(stored) and password_matches(stored,
                                                                                  password))
    if ok:
        if len(_verified) > 1000:
            _verified.clear()
        _verified[key] = now + VERIFIED_FOR_S
    return ok


def throttle() -> FailureThrottle:
    return current_gateway().admin_throttle


@auth.verify_password
def verify(username: str, password: str):
    address = request.remote_addr or "?"
    wait = throttle().blocked_for(address)
    if wait:
        raise GatewayError(429, "too many failed logins from this address; try again later",
                           headers={"retry-after": str(int(wait) + 1)})
    if not username and not password:
        return None  # the browser's first request, before it asks for credentials
    admin = current_gateway().config.admin
    if _login_ok(admin.password or "", username, password, admin.username):
        request.environ[AUTHENTICATED_KEY] = True
        return username
    throttle().failed(address)
    return None


@auth.error_handler
def unauthorized(status: int):
    raise GatewayError(status, "admin login required",
                       headers={"www-authenticate": 'Basic realm="CCGate admin", charset="UTF-8"'})
