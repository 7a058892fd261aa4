"""Error bodies in each surface's own shape, and the gateway's error kinds."""
from __future__ import annotations

import json

# Anthropic error type for each HTTP status the gateway itself answers with.
ANTHROPIC_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}
# The status an upstream error of each type stands for (its own HTTP status when it has one).
STATUS_BY_ANTHROPIC_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class GatewayError(Exception):
    """An error the gateway answers itself, before or instead of an upstream answer."""

    def __init__(self, status: int, message: str, *, error_type: str | None = None,
                 headers: dict[str, str] | None = None, param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or ANTHROPIC_TYPE_BY_STATUS.get(status, "api_error")
        self.headers = headers or {}
        self.param = param
        self.code = code


def anthropic_error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": error_type, "message": message}}).encode()


def anthropic_error_event(error_type: str, message: str) -> bytes:
    """One SSE ``event: error`` as Anthropic sends it mid-stream."""
    return b"event: error\ndata: " + anthropic_error_body(error_type, message) + b"\n\n"
