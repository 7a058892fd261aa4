"""Per-request hooks: request ids, the in-flight count, one access-log line each, CORS."""
from __future__ import annotations

import time

from flask import Flask, Response, g, request

from ..core.client_ip import client_address
from ..core.errors import GatewayError
from ..ops.logs import access_line
from ..proxy.relay import RelayBody
from ..http.server import HEAD_CHECKED_KEY
from ..usage.meter import new_request_id
from ..usage.record import utc_second
from .request import current_gateway


CORS_PREFIXES = ("/openai/", "/anthropic/")
CORS_ALLOW_HEADERS = ("authorization, content-type, x-api-key, anthropic-version, anthropic-beta, "
                      "x-stainless-os, x-stainless-lang, x-stainless-package-version, "
                      "x-stainless-runtime, x-stainless-runtime-version, x-stainless-arch, "
                      "x-stainless-retry-count, x-stainless-timeout, "
                      "anthropic-dangerous-direct-browser-access")


EXPOSE_HEADERS = "x-request-id, x-ccgate-daily-remaining-usd, retry-after, x-should-retry"


def _preflight() -> Response:
    """The answer to a browser's CORS preflight (``OPTIONS``) on the API surfaces."""
    response = Response(status=204)
    response.headers["access-control-allow-methods"] = "GET, POST, OPTIONS"
    response.headers["access-control-allow-headers"] = CORS_ALLOW_HEADERS
    response.headers["access-control-max-age"] = "86400"
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
    """Request ids, the in-flight count (for graceful shutdown), one access-log line each, and
    CORS for the API surfaces (so browser apps such as NextChat can call them). One hook each
    way: Flask's cost is per hook and request."""
    app.before_request(start)
    app.after_request(finish)


def start() -> Response | None:
    """Every request: its id, start time and gateway in ``g``; the in-flight count; the client
    address behind trusted proxies; control characters refused (under other servers); a CORS
    preflight answered."""
    # The request, g and the gateway are bound once: each use of Flask's context proxies
    # costs a lookup, and this runs for every request.
    req, ctx, gw = request._get_current_object(), g._get_current_object(), current_gateway()
    ctx.request_id = new_request_id()
    ctx.started = time.monotonic()
    ctx.gateway = gw
    gw.in_flight += 1
    env = req.environ
    if gw.config.trusted_proxies:
        # Behind the operator's reverse proxy the client is in X-Forwarded-For / Forwarded;
        # every use of request.remote_addr (lock-outs, logs, records) then sees it.
        env["ccgate.peer"] = peer = env.get("REMOTE_ADDR", "")
        env["REMOTE_ADDR"] = req.remote_addr = client_address(
            peer, env.get("HTTP_X_FORWARDED_FOR"), env.get("HTTP_FORWARDED"),
            gw.config.trusted_proxies)
    if not env.get(HEAD_CHECKED_KEY):  # another server (tests, flask run)
        for name, value in req.headers.items():
            if any(c in value for c in "\r\n\x00"):
                # Never forwarded: a CR/LF in a header could split the upstream request.
                raise GatewayError(400, f"header {name!r} contains a control character")
    if req.method == "OPTIONS" and req.path.startswith(CORS_PREFIXES):
        return _preflight()
    return None


def finish(response: Response) -> Response:
    """Every response: ``x-request-id``, and its access-log line once its body has gone out."""
    req, ctx = request._get_current_object(), g._get_current_object()
    headers = response.headers
    headers["x-request-id"] = request_id = ctx.request_id
    headers["x-content-type-options"] = "nosniff"  # no browser reads a JSON answer as a page
    gw, started = ctx.gateway, ctx.started
    call, meter = getattr(ctx, "call", None), getattr(ctx, "meter", None)
    tenant = call.tenant if call is not None else None
    method, path, client = req.method, req.path, req.remote_addr
    if "HTTP_ORIGIN" in req.environ and path.startswith(CORS_PREFIXES):
        # Only browsers send Origin, and only they read these; SDKs and Claude Code never do.
        response.headers["access-control-allow-origin"] = gw.config.cors_origin
        response.headers["access-control-expose-headers"] = EXPOSE_HEADERS

    def done(sent: int | None) -> None:
        gw.in_flight -= 1
        record = meter.record if meter is not None else None
        access_line(
            time=utc_second(time.time()), requestId=request_id,
            tenantId=tenant.id if tenant else None, method=method, path=path,
            model=record.model if record else call and call.requested_model,
            status=response.status_code,
            upstream=record.upstream if record else None,
            durationMs=round((time.monotonic() - started) * 1000, 1),
            ttfbMs=record.ttfbMs if record else None, bytes=sent, clientIP=client)

    if isinstance(response.response, RelayBody):
        response.response.on_end.append(done)  # the relay owns the end of its stream
    elif response.is_streamed:
        # Logged when the server closes the body: streams are over, bytes are known.
        response.response = CountingBody(response.response, done)
    else:
        done(response.calculate_content_length())
    return response
