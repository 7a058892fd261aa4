"""What the gateway reads from a client request: model, stream flag and conversation session id."""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

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


def parse_json_object(body: bytes) -> dict:
    """The request body as a JSON object; ValueError with a client-readable message otherwise."""
    try:
        doc = json.loads(body)
    except UnicodeDecodeError:
        raise ValueError("request body is not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"request body is not valid JSON: {e.msg} at line {e.lineno} "
                         f"column {e.colno}") from None
    except RecursionError:
        raise ValueError("request body is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ValueError("request body must be a JSON object")
    return doc
