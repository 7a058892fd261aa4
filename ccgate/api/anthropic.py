"""``/anthropic/<path>``: Anthropic API pass-through for tenants (Claude Code's ANTHROPIC_BASE_URL)."""
from __future__ import annotations

from flask import Blueprint, Response, g, request

from ..errors import GatewayError
from ..metering import forward_metered
from ..proxy import ProxyRequest
from ..request_meta import parse_json_object, session_id
from ..server import CLIENT_SOCKET_KEY
from . import authenticate, check_models, current_gateway

bp = Blueprint("anthropic", __name__, url_prefix="/anthropic")

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
# Paths whose body must be a JSON object: the gateway reads ``model`` and ``stream`` from it.
JSON_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens", "/v1/complete"})
# Paths that generate tokens: each request writes a usage record. Every request naming a model
# (count_tokens, batches too) is still admitted against the tenant's limits first.
METERED_PATHS = frozenset({"/v1/messages", "/v1/complete"})


def safe_path(path: str) -> str:
    """``/`` + path, refusing anything that could leave the upstream's URL prefix."""
    segments = path.split("/")
    if any(s in ("", ".", "..") for s in segments) or "\\" in path or ":" in segments[0]:
        raise GatewayError(404, f"no such endpoint: /{path}")
    return "/" + path


def models_in(path: str, body: dict) -> list[str]:
    """Every model a request names: top level, or inside each request of a message batch."""
    found = [body["model"]] if isinstance(body.get("model"), str) else []
    if path.startswith("/v1/messages/batches") and isinstance(body.get("requests"), list):
        for item in body["requests"]:
            params = item.get("params") if isinstance(item, dict) else None
            if isinstance(params, dict) and isinstance(params.get("model"), str):
                found.append(params["model"])
    return found


@bp.route("/<path:path>", methods=METHODS)
def forward(path: str):
    gw = current_gateway()
    tenant = authenticate()
    path = safe_path(path)
    body = request.get_data(cache=False)
    doc = None
    if (body or path in JSON_PATHS) and request.method == "POST" and (
            path in JSON_PATHS or request.mimetype == "application/json"):
        try:
            doc = parse_json_object(body)
        except ValueError as e:
            if path in JSON_PATHS:
                raise GatewayError(400, str(e)) from None
    model = doc.get("model") if doc and isinstance(doc.get("model"), str) else None
    models = models_in(path, doc) if doc else []
    check_models(tenant, models)
    req = ProxyRequest(
        method=request.method,
        path=path,
        query=request.query_string.decode("latin-1"),
        headers=list(request.headers.items()),
        body=body,
        model=model,
        stream=bool(doc and doc.get("stream") is True),
        session=session_id(request.headers, doc),
        body_json=doc,
        client_socket=request.environ.get(CLIENT_SOCKET_KEY),
    )
    if not models:
        relay = gw.forwarder.forward(req)
        return Response(relay.body, status=relay.status, headers=relay.headers,
                        direct_passthrough=True)
    relay, g.meter = forward_metered(gw, tenant, req, api="anthropic", requested_model=model,
                                   request_id=g.request_id,
                                   record=path in METERED_PATHS,
                                   user_agent=request.headers.get("user-agent"))
    response = Response(relay.body, status=relay.status, headers=relay.headers,
                        direct_passthrough=True)
    remaining = g.meter.admission.daily_remaining_usd
    if remaining is not None and relay.status < 400:
        response.headers["x-ccgate-daily-remaining-usd"] = f"{remaining:.4f}"
    return response
