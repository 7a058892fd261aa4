"""The request as the API surfaces read it: the gateway, the body (bounded, timed), the client's
headers and socket, the conversation session, and the answer's way back."""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

import gevent
from flask import Response, current_app, request

from ..core.errors import GatewayError
from .errors import bad_chunks, malformed_chunks
from ..gateway import Gateway
from ..proxy import Relay
from ..http.server import CLIENT_SOCKET_KEY
from ..usage.meter import Meter


_LEGACY_USER_ID = re.compile(r"_session_([0-9A-Za-z-]+)$")


def session_id(headers: Mapping[str, str], body: Any) -> str | None:
    """The conversation id used to keep one conversation on one upstream (prompt caching).

    Sources, first found wins: ``x-ccgate-session`` (explicit), ``x-claude-code-session-id``
    (current Claude Code), then ``metadata.user_id``: a JSON string with ``session_id`` (current
    Claude Code), ``user_<hash>_account_<uuid>_session_<uuid>`` (older Claude Code), or any other
    string, taken whole (one end user, one upstream).
    """
    for name in ("x-ccgate-session", "x-claude-code-session-id"):
        value = headers.get(name)
        if value:
            return value
    if not isinstance(body, dict):
        return None
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return None
    if user_id.startswith("{"):
        try:
            parsed = json.loads(user_id)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("session_id"), str):
            return parsed["session_id"]
    legacy = _LEGACY_USER_ID.search(user_id)
    return legacy.group(1) if legacy else user_id



def current_gateway() -> Gateway:
    return current_app.extensions["ccgate"]


def client_side(environ: dict) -> dict:
    """The client connection's part of a ProxyRequest: its socket, to notice a hang-up, and
    whether it may be probed with an interim response (HTTP/1.1)."""
    return {"client_socket": environ.get(CLIENT_SOCKET_KEY),
            "interim_ok": environ.get("SERVER_PROTOCOL") == "HTTP/1.1"}


def client_headers(environ: dict) -> list[tuple[str, str]]:
    """The request's header fields, names in lower case, read from the WSGI environ in one pass
    (werkzeug's ``EnvironHeaders`` builds each title-cased name in Python code)."""
    out = [(key[5:].replace("_", "-").lower(), value) for key, value in environ.items()
           if key.startswith("HTTP_")]
    if environ.get("CONTENT_TYPE"):
        out.append(("content-type", environ["CONTENT_TYPE"]))
    return out


def remaining_headers(meter: Meter, status: int) -> dict[str, str]:
    """``x-ccgate-daily-remaining-usd`` for a successful answer when a daily limit is set."""
    remaining = meter.admission.daily_remaining_usd
    if remaining is None or status >= 400:
        return {}
    return {"x-ccgate-daily-remaining-usd": f"{remaining:.4f}"}


def relay_response(relay: Relay, meter: Meter) -> Response:
    """The upstream's answer as the client's response, relayed as it arrives."""
    response = Response(relay.body, status=relay.status, headers=relay.headers,
                        direct_passthrough=True)
    remaining = remaining_headers(meter, relay.status)
    if remaining:
        response.headers.update(remaining)
    return response


READ_SIZE = 64 * 1024


class _BodyStalled(Exception):
    pass


def request_body(gw: Gateway, most: int | None = None) -> bytes:
    """The whole request body; 413 over ``server.maxBodyMB`` (or ``most`` bytes; Content-Length
    or chunked), 408 when it stops arriving for ``server.bodyTimeout``.

    The body is read here rather than through werkzeug, which cuts a chunked body at the limit
    silently and waits forever on a trickle; a refused body is not read further and the
    connection is closed.
    """
    req = request._get_current_object()
    limit, timeout = most or gw.config.max_body_bytes, gw.config.body_timeout_s
    stream, length = req.environ["wsgi.input"], req.content_length  # length: None when chunked
    if (length or 0) > limit:
        raise _abandon(stream, _too_large())
    parts, size = [], 0
    timer = gevent.Timeout(timeout, _BodyStalled)  # restarted for each read: "nothing for N s"
    try:
        while length is None or size < length:
            timer.start()
            try:
                chunk = stream.read(READ_SIZE if length is None else min(READ_SIZE, length - size))
            except _BodyStalled:
                raise _abandon(stream, GatewayError(
                    408, f"the request body stopped arriving (nothing for {timeout:g} s); send "
                         f"it again", error_type="timeout_error",
                    headers={"connection": "close"})) from None
            except (ValueError, OSError):
                if malformed_chunks(req.environ):
                    raise bad_chunks() from None
                raise
            finally:
                timer.cancel()
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise _abandon(stream, _too_large())
            parts.append(chunk)
    finally:
        timer.close()
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _too_large() -> GatewayError:
    return GatewayError(413, "request body is larger than this gateway accepts",
                        headers={"connection": "close"})


def _abandon(stream, error: GatewayError) -> GatewayError:
    """The rest of this body is never read: gevent would otherwise read it to the end before
    closing (its own flag for "unknown state: close without discarding")."""
    if hasattr(stream, "_chunked_input_error"):
        stream._chunked_input_error = True
    return error


def drain(body: Iterable[bytes]) -> bytes:
    """A whole relayed body (error answers and non-streaming messages are small)."""
    try:
        return b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def limit_arg(default: int = 100, most: int = 1000) -> int:
    """The ``limit`` query argument of the admin lists: 1 to ``most``, or 400."""
    try:
        limit = int(request.args.get("limit", str(default)))
    except ValueError:
        raise GatewayError(400, "limit must be a whole number") from None
    if not 1 <= limit <= most:
        raise GatewayError(400, f"limit must be from 1 to {most}")
    return limit
