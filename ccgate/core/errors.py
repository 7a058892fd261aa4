"""Error bodies in each surface's own shape, and the gateway's error kinds."""
from __future__ import annotations

import json
from typing import NamedTuple

# The Anthropic API version the gateway speaks when a client names none (and for its own calls).
ANTHROPIC_VERSION = "2023-06-01"

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
                 code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.extra = extra or {}  # more top-level fields of a plain (admin API) error body
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


class AnthropicError(NamedTuple):
    type: str | None
    message: str | None


def parse_anthropic_error(data: bytes | str) -> AnthropicError:
    """``error.type`` and ``error.message`` of an Anthropic error body or ``event: error``
    payload; ``(None, None)`` when ``data`` is not one (an HTML page, truncated JSON)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return AnthropicError(None, None)
    return anthropic_error_of(doc)


def anthropic_error_of(doc: object) -> AnthropicError:
    """``parse_anthropic_error`` for a document already decoded."""
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict):
        return AnthropicError(None, None)
    error_type, message = err.get("type"), err.get("message")
    return AnthropicError(error_type if isinstance(error_type, str) else None,
                          message if isinstance(message, str) else None)


def status_of_error_type(error_type: str | None) -> int:
    """The HTTP status an Anthropic error type stands for (500 when unknown)."""
    return STATUS_BY_ANTHROPIC_TYPE.get(error_type, 500) if error_type else 500


def upstream_failure_answer(status: int | None, body: bytes, hide) -> tuple[int, bytes]:
    """The client's answer when every upstream attempt failed: the last status, Anthropic's shape.

    ``hide(text)`` removes the upstream's secrets from the upstream's own message.
    """
    if status is None:
        return 503, anthropic_error_body("overloaded_error", "no upstream could be reached; "
                                         "try again shortly")
    if status in (401, 403):
        # The upstream refused the gateway's own key: never the tenant's fault, so no 401 that
        # would make Claude Code ask its user to log in again.
        return 502, anthropic_error_body("api_error", f"the upstream rejected the gateway's "
                                         f"credentials (HTTP {status}); tell the operator")
    error_type, message = parse_anthropic_error(body)
    message = hide(message) if message else f"upstream answered HTTP {status}"
    return status, anthropic_error_body(error_type or ANTHROPIC_TYPE_BY_STATUS.get(status, "api_error"),
                                        message)
