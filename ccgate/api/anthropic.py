"""``/anthropic/<path>``: Anthropic API pass-through for tenants (Claude Code's ANTHROPIC_BASE_URL).

Every request here, whatever its path, method or content type, is authenticated, checked against
the tenant's model allow-list and limits, and metered by what comes back (``metering``). The
upstream path is decided once, from the decoded path, and only paths made of plain segments pass.
"""
from __future__ import annotations

import json
import re

from flask import Blueprint, Response, g, request

from ..core.errors import GatewayError
from ..proxy import ProxyRequest, Relay
from ..core.json_object import parse_spotting, with_model
from ..tenants import Tenant
from ..resources.endpoints import MODELS, Endpoint
from ..resources.refs import OBJECT_KEYS, may_name_objects
from . import resources
from .request import client_headers, client_side, drain, relay_response, request_body, session_id
from .auth import check_models, tenant_required

bp = Blueprint("anthropic", __name__, url_prefix="/anthropic")

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
# Decoded path segments of RFC 3986 unreserved characters only, between single slashes. That
# rules out "?", "#", ";", "%" (so nothing is still encoded after one decoding), whitespace and
# control characters; "." and ".." segments are refused apart.
_PATH = re.compile(r"[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*")


def upstream_path(path: str) -> str:
    """``/`` + the decoded ``path`` as the upstream will receive it; 404 for anything ambiguous.

    Refused: empty, ``.`` and ``..`` segments and any character outside the unreserved set. What
    passes needs no percent-encoding, so the upstream receives exactly the path that was checked.
    """
    if not _PATH.fullmatch(path) or "." in path and {".", ".."} & set(path.split("/")):
        raise GatewayError(404, "no such endpoint: the path may only hold letters, digits and "
                                "'-', '.', '_', '~' between single slashes")
    return "/" + path


def models_in(endpoint: Endpoint, body: dict) -> list[str]:
    """Every model a request body names: top level, and each request of a message batch.

    A ``model`` that is present but not a string is a 400: it could mean something else to a
    mirror than to the allow-list.
    """
    found = []
    if "model" in body:
        if not isinstance(body["model"], str):
            raise GatewayError(400, "model: must be a string")
        found.append(body["model"])
    if endpoint.resource == "batches" and "requests" in body:
        if not isinstance(body["requests"], list):
            raise GatewayError(400, "requests: must be an array")
        for i, item in enumerate(body["requests"]):
            params = item.get("params") if isinstance(item, dict) else None
            if not isinstance(params, dict) or not isinstance(params.get("model"), str):
                raise GatewayError(400, f"requests[{i}].params.model: must be a string")
            found.append(params["model"])
    return found


def needs_model(endpoint: Endpoint) -> bool:
    """Inference and ``count_tokens``: the body must be a JSON object naming a ``model``."""
    return endpoint.route.body == "json" and endpoint.resource is None \
        and endpoint.kind != "extra"


def parse_body(endpoint: Endpoint, body: bytes) -> tuple[dict | None, bool]:
    """The body as a JSON object, whatever the content type claims; None for no body and for
    uploads (multipart files and skills, which name no model and are passed as they are). And
    whether it may name a file, skill or container, mostly learnt in the parse's own pass."""
    if endpoint.route.body == "upload" or not body and not needs_model(endpoint):
        return None, False
    try:
        doc, spotted = parse_spotting(body, OBJECT_KEYS)
    except ValueError as e:
        raise GatewayError(400, str(e)) from None
    return doc, spotted if spotted is not None else may_name_objects(body)


def rewrite_model(tenant: Tenant, requested: str | None, doc: dict | None,
                  body: bytes) -> tuple[str | None, dict | None, bytes]:
    """The tenant's ``modelRewrite`` applied to the top-level model: the model, document and body
    to check and send. The body is re-encoded only when the model changes."""
    model = tenant.rewrite(requested) if requested else None
    if model == requested:
        return model, doc, body
    return model, {**doc, "model": model}, with_model(body, model)


@bp.route("/<path:path>", methods=METHODS)
@tenant_required
def forward(path: str):
    req, ctx = request._get_current_object(), g._get_current_object()
    gw, tenant, method, headers = ctx.gateway, ctx.call.tenant, req.method, req.headers
    path = upstream_path(path)
    endpoint = resources.endpoint_for(tenant, method, path)
    if endpoint.kind == "list":
        with gw.admitted(tenant):
            return resources.list_answer(gw.owners, tenant, endpoint, req.args)
    body = request_body(gw)
    doc, may_name = parse_body(endpoint, body)
    models = models_in(endpoint, doc) if doc is not None else []
    if needs_model(endpoint) and not models:
        raise GatewayError(400, "model: this field is required")
    requested = models[0] if models and "model" in doc else None
    call = ctx.call
    call.requested_model, call.record = requested, endpoint.route.record
    call.spend_limits = endpoint.kind not in ("free", "item", "delete") \
        and endpoint.route.body != "upload"
    model, doc, body = rewrite_model(tenant, requested, doc, body)
    check_models(tenant, [model, *models[1:]] if model else models)
    proxy_request = ProxyRequest(
        method=method,
        path=path,
        query=req.query_string.decode("latin-1"),
        headers=client_headers(req.environ),
        body=body,
        model=model,
        stream=bool(doc and doc.get("stream") is True),
        session=session_id(headers, doc),
        body_json=doc,
        upstream=resources.holder(gw.owners, tenant, endpoint, doc, may_name),
        **client_side(req.environ),
    )
    reserve, notes, batch = 0.0, None, None
    if endpoint.resource == "batches" and endpoint.kind == "create" and doc is not None:
        reserve = gw.batch_estimate(tenant, doc.get("requests") or [], len(body))
        notes = {"estimateUSD": round(reserve, 6)}
    elif endpoint.route.results:
        batch = resources.owned(gw.owners, tenant, "batches", endpoint.object_id)
    relay, ctx.meter = gw.forward(call, proxy_request, reserve, batch)
    if endpoint.route is MODELS and endpoint.object_id is None and relay.status == 200:
        return _allowed_models_only(tenant, relay)
    settled = resources.settle(gw.owners, tenant, endpoint, relay, ctx.meter.outcome.upstream
                               if ctx.meter.outcome is not None else None, notes)
    return settled if settled is not None else relay_response(relay, ctx.meter)


def _allowed_models_only(tenant: Tenant, relay: Relay) -> Response:
    """The upstream's model list, cut to the models this tenant may use (an answer that is not
    a Models API list is passed on as it came)."""
    raw = drain(relay.body)
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        return Response(raw, status=relay.status, headers=relay.headers)
    doc["data"] = [m for m in doc["data"] if isinstance(m, dict)
                   and isinstance(m.get("id"), str) and tenant.may_use(m["id"])]
    if "first_id" in doc:
        doc["first_id"] = doc["data"][0]["id"] if doc["data"] else None
        doc["last_id"] = doc["data"][-1]["id"] if doc["data"] else None
    return Response(json.dumps(doc), mimetype="application/json")
