"""HTTP surfaces, one blueprint each; they translate HTTP to gateway calls and back."""
from __future__ import annotations

import json
import logging
import time

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from ..errors import GatewayError, anthropic_error_body
from ..gateway import Gateway
from ..logs import access_line
from ..usage.meter import new_request_id
from ..usage.store import StoreUnavailable
from ..openai.response import openai_error
from ..tenants import Tenant, presented_key

log = logging.getLogger("ccgate")


def current_gateway() -> Gateway:
    return current_app.extensions["ccgate"]


def tenant_for_key(key: str | None) -> Tenant:
    """The tenant owning ``key``; else 401, or 429 for an address that sent many bad keys.

    A valid key is never refused because of its address (family members share one NAT); an
    address that sent 30 bad keys within a minute gets 429 for its bad keys for a minute.
    """
    gw = current_gateway()
    tenant = gw.tenants.authenticate(key)
    g.tenant_id = tenant.id if tenant else None
    if tenant is not None:
        return tenant
    address = request.remote_addr or "?"
    wait = gw.key_throttle.blocked_for(address)
    if wait:
        raise GatewayError(429, "too many invalid API keys from this address; try again later",
                           headers={"retry-after": str(int(wait) + 1)})
    gw.key_throttle.failed(address)
    raise GatewayError(401, "invalid or missing API key: send your CCGate tenant key in "
                            "x-api-key or Authorization: Bearer")


def authenticate() -> Tenant:
    """The calling tenant of an API request, or a 401/403/429 GatewayError."""
    tenant = tenant_for_key(presented_key(request.headers))
    if not tenant.enabled:
        raise GatewayError(403, "this API key is disabled")
    return tenant


READ_SIZE = 64 * 1024


def request_body() -> bytes:
    """The whole request body; 413 over ``server.maxBodyMB``, with Content-Length or chunked.

    A chunked body is read here rather than through werkzeug, which cuts it at the limit
    silently; an over-long one is refused whole and the connection closed (its rest is unread).
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None:
        return request.get_data(cache=False)  # werkzeug answers 413 over the limit
    stream = request.environ["wsgi.input"]
    parts, size = [], 0
    while True:
        chunk = stream.read(READ_SIZE)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if limit is not None and size > limit:
            raise GatewayError(413, "request body is larger than this gateway accepts",
                               headers={"connection": "close"})
        parts.append(chunk)


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

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(e: StoreUnavailable):
        return error_response(GatewayError(503, str(e), error_type="api_error"))

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


class CountingBody:
    """Passes a streamed body through, counting bytes; ``close`` reaches the wrapped body, then
    calls ``on_close`` (once) with the byte count."""

    def __init__(self, body, on_close):
        self.body = body
        self.sent = 0
        self.on_close = on_close

    def __iter__(self):
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            on_close, self.on_close = self.on_close, None
            if on_close is not None:
                on_close(self.sent)


def register_request_hooks(app: Flask) -> None:
    """Request ids, the in-flight count (for graceful shutdown) and one access-log line each."""

    @app.before_request
    def start():
        g.request_id = new_request_id()
        g.started = time.monotonic()
        current_gateway().in_flight += 1
        for name, value in request.headers.items():
            if any(c in value for c in "\r\n\x00"):
                # Never forwarded: a CR/LF in a header value could split the upstream request.
                raise GatewayError(400, f"header {name!r} contains a control character")

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers["x-request-id"] = g.request_id
        gw = current_gateway()
        started, request_id = g.started, g.request_id
        tenant_id, meter = g.get("tenant_id"), g.get("meter")
        method, path = request.method, request.path

        def done(sent: int | None) -> None:
            gw.in_flight -= 1
            record = meter.record if meter is not None else None
            access_line(
                time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), requestId=request_id,
                tenantId=tenant_id, method=method, path=path,
                model=record["model"] if record else None, status=response.status_code,
                upstream=record["upstream"] if record else None,
                durationMs=round((time.monotonic() - started) * 1000, 1),
                ttfbMs=record["ttfbMs"] if record else None, bytes=sent)

        if response.is_streamed:
            # Logged when the server closes the body: streams are over, bytes are known.
            response.response = CountingBody(response.response, done)
        else:
            done(response.calculate_content_length())
        return response
