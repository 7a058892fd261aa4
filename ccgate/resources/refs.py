"""Upstream objects a request body names (pure): uploaded files and custom skills.

A message may point at a file by ``file_id`` (a document or image source, a container upload)
and at a skill by ``skill_id`` (``container.skills``). On a shared upstream account any id would
work, so each one must be the tenant's own, and the request must go to the upstream that holds
it.
"""
from __future__ import annotations

from typing import Iterator

_KEYS = {"file_id": "files", "skill_id": "skills"}
# Bytes that show a body may name an object (a key can also hide behind a \\u escape).
_HINTS = (b"file_id", b"skill_id", b"\\u")


def may_name_objects(body: bytes) -> bool:
    """False when ``body`` cannot name a file or a skill (most requests: no walk needed)."""
    return any(body.find(hint) >= 0 for hint in _HINTS)


def named_objects(doc: object) -> Iterator[tuple[str, str]]:
    """``(kind, id)`` for each file and custom skill ``doc`` names, at any depth.

    Anthropic's own skills (``"type": "anthropic"``, e.g. ``pptx``) belong to nobody and pass.
    """
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                kind = _KEYS.get(key)
                if kind is not None and isinstance(value, str):
                    if kind != "skills" or node.get("type") != "anthropic":
                        yield kind, value
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
