"""HTTP surfaces, one blueprint each; they translate HTTP to gateway calls and back."""
from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from ..errors import GatewayError, anthropic_error_body
from ..gateway import Gateway

log = logging.getLogger("ccgate")


def current_gateway() -> Gateway:
    return current_app.extensions["ccgate"]


def error_response(e: GatewayError) -> Response:
    """The error in the shape of the API the request was made to."""
    headers = {"content-type": "application/json", **e.headers}
    if request.path.startswith("/anthropic"):
        body = anthropic_error_body(e.error_type, e.message)
        return Response(body, status=e.status, headers=headers)
    return Response(jsonify({"error": {"message": e.message, "type": e.error_type}}).get_data(),
                    status=e.status, headers=headers)


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
