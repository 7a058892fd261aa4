"""HTTP basic auth for the admin dashboard and its API (flask-httpauth)."""
from __future__ import annotations

from flask import request
from flask_httpauth import HTTPBasicAuth
from werkzeug.security import check_password_hash

from ..core.errors import GatewayError
from ..tenants import same_secret
from ..core.throttle import FailureThrottle
from .request import current_gateway

HASH_PREFIXES = ("scrypt:", "pbkdf2:")

auth = HTTPBasicAuth(realm="CCGate admin")


def password_matches(stored: str, given: str) -> bool:
    """``admin.password`` may be plain text or a werkzeug hash (``scrypt:…``/``pbkdf2:…``)."""
    if stored.startswith(HASH_PREFIXES):
        return check_password_hash(stored, given)
    return same_secret(stored, given)


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
    stored = admin.password
    user_ok = same_secret(admin.username, username)
    pass_ok = bool(stored) and password_matches(stored, password)
    if user_ok and pass_ok:
        return username
    throttle().failed(address)
    return None


@auth.error_handler
def unauthorized(status: int):
    raise GatewayError(status, "admin login required",
                       headers={"www-authenticate": 'Basic realm="CCGate admin", charset="UTF-8"'})
