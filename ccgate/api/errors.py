"""Errors in the shape of the API a request was made to (Anthropic's, OpenAI's, or plain)."""
from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from ..core.errors import GatewayError, anthropic_error_body
from ..openai.response import openai_error
from ..usage.store import StoreUnavailable

log = logging.getLogger("ccgate")
# Anthropic error types that OpenAI's API names differently.
OPENAI_TYPES = {"request_too_large": "invalid_request_error", "billing_error": "insufficient_quota"}


def error_response(e: GatewayError) -> Response:
    """The error in the shape of the API the request was made to."""
    headers = {"content-type": "application/json", **e.headers}
    if e.status in (401, 403):
        # A wrong or refused key does not get better by itself: the official SDKs and Claude
        # Code honour this and stop at once (Claude Code retried 10 times over 3 minutes).
        headers.setdefault("x-should-retry", "false")
    if request.path.startswith("/anthropic"):
        body = anthropic_error_body(e.error_type, e.message)
    elif request.path.startswith("/openai"):
        error_type = OPENAI_TYPES.get(e.error_type, e.error_type)
        body = json.dumps(openai_error(e.status, e.message, error_type, e.param, e.code)).encode()
    else:
        body = json.dumps({"error": {"message": e.message, "type": e.error_type},
                           **e.extra}).encode()
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
        if malformed_chunks(request.environ):
            return error_response(bad_chunks())
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(GatewayError(500, "internal gateway error"))


def malformed_chunks(environ: dict) -> bool:
    """Whether reading the request's chunked body failed on its framing (a chunk size that is
    not hexadecimal, a chunk without its CRLF, an early end): gevent's input marks it."""
    return bool(getattr(environ.get("wsgi.input"), "_chunked_input_error", False))


def bad_chunks() -> GatewayError:
    """400 for a malformed chunked body; the connection is closed, so bytes after the bad
    framing are never read as another request (the server closes it too: ``http.server``)."""
    return GatewayError(400, "the request body's chunked framing is malformed (a chunk size that "
                             "is not hexadecimal, or a chunk without its CRLF); fix the client or "
                             "the proxy in front", headers={"connection": "close"})
