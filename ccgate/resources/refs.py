"""Upstream objects a request body names (pure): uploaded files, custom skills, containers.

A message may point at a file by ``file_id`` (a ``{"type": "file"}`` document or image source,
a ``container_upload`` block) and at a skill by ``skill_id`` (``{"type": "custom"}`` in
``container.skills``). On a shared upstream account any id would work, so each one must be the
tenant's own, and the request must go to the upstream that holds it. Tool inputs are the
model's and the client's own JSON: a ``file_id`` key there names nothing upstream.
"""
from __future__ import annotations

import re
from typing import Iterator

from ..core.json_object import has_unicode_escape

# Bytes that show a body may name an object: the keys, quoted as keys are (the same words inside
# a string have their quotes escaped), or any escaped printable ASCII character, which is how a
# key could hide ("file\\u005fid"). Encoders escape control and non-ASCII characters, so the
# bodies of real clients rarely have one, and most bodies are never walked. One pass of one
# pattern: three bytes.find calls and a search for "\\u" took 98 µs on a 50 KB body, this 18.
OBJECT_KEYS = ("file_id", "skill_id", "container")
_KEYS = re.compile(b'"(?:' + b"|".join(k.encode() for k in OBJECT_KEYS) + b')"')
_ESCAPED_ASCII = re.compile(rb"\\u00[2-7][0-9a-fA-F]")
_FILE_HOLDERS = frozenset({"file", "container_upload"})
_TOOL_USES = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


def may_name_objects(body: bytes) -> bool:
    """False when ``body`` cannot name a file, skill or container (most requests)."""
    return _KEYS.search(body) is not None or (
        has_unicode_escape(body) and _ESCAPED_ASCII.search(body) is not None)


def named_objects(doc: object) -> Iterator[tuple[str, str]]:
    """``(kind, id)`` for each file and custom skill ``doc`` names, at any depth."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if kind in _FILE_HOLDERS and isinstance(node.get("file_id"), str):
            yield "files", node["file_id"]
        elif kind == "custom" and isinstance(node.get("skill_id"), str):
            yield "skills", node["skill_id"]
        skip = "input" if kind in _TOOL_USES else None
        stack.extend(v for k, v in node.items() if k != skip and isinstance(v, (dict, list)))


def reused_containers(doc: dict) -> list[str]:
    """Container ids a request (or each request of a batch) asks to run in again: containers
    are shared by every key of the upstream account and the gateway does not own them."""
    batch = doc.get("requests") if isinstance(doc.get("requests"), list) else []
    params = [doc] + [r.get("params") for r in batch if isinstance(r, dict)]
    found = []
    for p in params:
        container = p.get("container") if isinstance(p, dict) else None
        if isinstance(container, str):
            found.append(container)
        elif isinstance(container, dict) and isinstance(container.get("id"), str):
            found.append(container["id"])
    return found
