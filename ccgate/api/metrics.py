"""``GET /metrics``: Prometheus text format, private by default: the metrics name every tenant
and its spend. A scraper sends ``Authorization: Bearer <metrics.token>``, or the admin's basic
auth (Prometheus' ``authorization`` or ``basic_auth`` settings); ``metrics.public: true`` opens it
to anyone who can reach the gateway."""
from __future__ import annotations

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST

from ..ops import metrics
from ..core.errors import GatewayError
from ..tenants import same_secret
from .admin_auth import verify
from .request import current_gateway

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape():
    gw = current_gateway()
    settings = gw.config.metrics
    if not settings.enabled:
        raise GatewayError(404, "metrics are turned off")
    if not settings.public and not _scraper_allowed(settings.token):
        raise GatewayError(401, "metrics are private: send Authorization: Bearer <metrics.token>"
                                " or the admin's basic auth (or set metrics.public)",
                           headers={"www-authenticate": 'Basic realm="CCGate admin"'})
    return Response(metrics.exposition(gw.pool), mimetype=CONTENT_TYPE_LATEST)


def _scraper_allowed(token: str | None) -> bool:
    given = request.headers.get("authorization", "")
    if token and same_secret(given, f"Bearer {token}"):
        return True
    basic = request.authorization
    return bool(basic and basic.type == "basic" and current_gateway().config.admin.enabled
                and verify(basic.username or "", basic.password or ""))
