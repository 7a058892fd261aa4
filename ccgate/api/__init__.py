"""HTTP surfaces, one blueprint each; they translate HTTP to gateway calls and back."""
from __future__ import annotations

import json
import logging

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..errors import GatewayError, anthropic_error_body
from ..gateway import Gateway
from ..openai.response import openai_error
from ..tenants import Tenant, presented_key

log = logging.getLogger("ccgate")


def current_gateway() -> Gateway:
    return current_app.extensions["ccgate"]


def authenticate() -> Tenant:
    """The calling tenant, or a 401/403 GatewayError."""
    tenant = current_gateway().tenants.authenticate(presented_key(request.headers))
    if tenant is None:
        raise GatewayError(401, "invalid or missing API key: send your CCGate tenant key in "
                                "x-api-key or Authorization: Bearer")
    if not tenant.enabled:
        raise GatewayError(403, "this API key is disabled")
    return tenant


def check_models(tenant: Tenant, models: list[str]) -> None:
    """403 unless the tenant may use every model named."""
    for model in models:
        if not tenant.may_use(model):
            raise GatewayError(403, f"model {model!r} is not allowed for this key "
                                    f"(allowed: {', '.join(tenant.allowed.patterns) or 'none'})")


def error_response(e: GatewayError) -> Response:
    """The error in the shape of the API the request was made to."""
    headers = {"content-type": "application/json", **e.headers}
    if request.path.startswith("/anthropic"):
        body = anthropic_error_body(e.error_type, e.message)
    elif request.path.startswith("/openai"):
        error_type = "invalid_request_error" if e.error_type == "request_too_large" else e.error_type
        body = json.dumps(openai_error(e.status, e.message, error_type, e.param, e.code)).encode()
    else:
        body = json.dumps({"error": {"message": e.message, "type": e.error_type}}).encode()
    return Response(body, status=e.status, headers=headers)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(GatewayError)
    def gateway_error(e: GatewayError):
        return error_response(e)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        status = e.code or 500
        if status == 413:
            message = "request body is larger than this gateway accepts"
        elif status == 404:
            message = f"no such endpoint: {request.path}"
        else:
            message = e.description or e.name
        return error_response(GatewayError(status, message))

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(GatewayError(500, "internal gateway error"))


CORS_PREFIXES = ("/openai/", "/anthropic/")
CORS_ALLOW_HEADERS = ("authorization, content-type, x-api-key, anthropic-version, anthropic-beta, "
                      "x-stainless-os, x-stainless-lang, x-stainless-package-version, "
                      "x-stainless-runtime, x-stainless-runtime-version, x-stainless-arch, "
                      "x-stainless-retry-count, x-stainless-timeout, "
                      "anthropic-dangerous-direct-browser-access")


def register_cors(app: Flask, origin: str) -> None:
    """CORS for the API surfaces, so browser apps such as NextChat can call them."""

    @app.before_request
    def preflight():
        if request.method == "OPTIONS" and request.path.startswith(CORS_PREFIXES):
            response = Response(status=204)
            response.headers["access-control-allow-methods"] = "GET, POST, OPTIONS"
            response.headers["access-control-allow-headers"] = CORS_ALLOW_HEADERS
            response.headers["access-control-max-age"] = "86400"
            return response
        return None

    @app.after_request
    def allow_origin(response: Response) -> Response:
        if request.path.startswith(CORS_PREFIXES):
            response.headers["access-control-allow-origin"] = origin
            response.headers["access-control-expose-headers"] = (
                "x-request-id, x-ccgate-daily-remaining-usd, retry-after")
        return response
