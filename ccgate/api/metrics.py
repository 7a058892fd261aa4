"""``GET /metrics``: Prometheus text format (``metrics.enabled``, optional ``metrics.token``)."""
from __future__ import annotations

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST

from ..ops import metrics
from ..core.errors import GatewayError
from ..tenants import same_secret
from .request import current_gateway

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape():
    gw = current_gateway()
    settings = gw.config.metrics
    if not settings.enabled:
        raise GatewayError(404, "metrics are turned off")
    token = settings.token
    if token:
        given = request.headers.get("authorization", "")
        if not same_secret(given, f"Bearer {token}"):
            raise GatewayError(401, "metrics need Authorization: Bearer <metrics.token>",
                               headers={"www-authenticate": "Bearer"})
    return Response(metrics.exposition(gw.pool), mimetype=CONTENT_TYPE_LATEST)
