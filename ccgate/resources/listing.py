"""A tenant's own objects as the upstream's list endpoints answer them (pure).

Anthropic pages lists two ways: ``before_id``/``after_id`` answered with ``first_id``,
``last_id`` and ``has_more`` (message batches, older Files API versions), and an opaque ``page``
cursor answered with ``next_page`` (Files, Skills). Every answer here carries both, so either
kind of client pages correctly; ``page`` is the id of the last object of the previous page.
Newest first, as Anthropic lists them. ``ids`` (Files) keeps only the ids named.
"""
from __future__ import annotations

from .owners import Owned

MOST = {"files": 1000, "batches": 1000, "skills": 100}


class BadListQuery(ValueError):
    """A query the list endpoint refuses (the message names the parameter)."""


def _limit(raw: str | None, most: int) -> int:
    raw = raw or "20"
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise BadListQuery(f"limit: must be a whole number from 1 to {most}")
    return int(raw)


def _position(ids: list[str], cursor: str, name: str) -> int:
    if cursor not in ids:
        raise BadListQuery(f"{name}: no such object in this list")
    return ids.index(cursor)


def page(kind: str, owned: list[Owned], args) -> dict:
    """The list answer for ``owned`` (newest first) and the client's query ``args`` (a
    MultiDict, or a plain mapping)."""
    wanted = args.getlist("ids") if hasattr(args, "getlist") else []
    if wanted:
        owned = [o for o in owned if o.id in set(wanted)]
    limit = _limit(args.get("limit"), MOST[kind])
    objects, ids = [o.object for o in owned], [o.id for o in owned]
    after = args.get("after_id") or args.get("page")
    if after is not None and args.get("before_id") is not None:
        raise BadListQuery("before_id, after_id: give one of them, not both")
    if args.get("before_id") is not None:
        end = _position(ids, args["before_id"], "before_id")
        start = max(0, end - limit)
        more = start > 0
    else:
        start = _position(ids, after, "after_id" if args.get("after_id") else "page") + 1 \
            if after is not None else 0
        end = min(len(objects), start + limit)
        more = end < len(objects)
    chunk = objects[start:end]
    first = ids[start] if chunk else None
    last = ids[end - 1] if chunk else None
    return {"data": chunk, "has_more": more, "first_id": first, "last_id": last,
            "next_page": last if more and args.get("before_id") is None else None}
