"""Owner records in Redis, for several instances (same records as ``owners.OwnerFile``).

``<prefix>owner:<kind>:<id>`` holds the record as JSON; ``<prefix>owned:<kind>:<tenant>`` is a
sorted set of the tenant's ids by creation time. Unlike limits, ownership fails closed: when
Redis cannot be asked, the object is unknown (404) rather than anybody's.
"""
from __future__ import annotations

import json

from ..shared.link import RedisLink
from .owners import Owned


class OwnerRedis:
    def __init__(self, link: RedisLink, prefix: str):
        self.link = link
        self.redis = link.redis
        self.prefix = prefix

    def _key(self, kind: str, object_id: str) -> str:
        return f"{self.prefix}owner:{kind}:{object_id}"

    def _index(self, kind: str, tenant: str) -> str:
        return f"{self.prefix}owned:{kind}:{tenant}"

    def add(self, owned: Owned) -> None:
        def run():
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(self._key(owned.kind, owned.id), json.dumps(owned.line("add")), nx=True)
            pipe.zadd(self._index(owned.kind, owned.tenant), {owned.id: owned.created})
            pipe.execute()
        self.link.call("an owner record", run)

    def get(self, kind: str, object_id: str) -> Owned | None:
        raw = self.link.call("an owner lookup", lambda: self.redis.get(self._key(kind, object_id)))
        if raw is None:
            return None
        return Owned.from_line(json.loads(raw))

    def _change(self, kind: str, object_id: str, change) -> None:
        """Read the record, ``change`` it, write it back unless it was removed meanwhile."""
        owned = self.get(kind, object_id)
        if owned is not None:
            change(owned)
            self.link.call("an owner record", lambda: self.redis.set(
                self._key(kind, object_id), json.dumps(owned.line("add")), xx=True))

    def update(self, owned: Owned) -> None:
        self._change(owned.kind, owned.id, lambda old: setattr(old, "object", owned.object))

    def note(self, kind: str, object_id: str, notes: dict) -> None:
        self._change(kind, object_id, lambda old: setattr(old, "notes", {**old.notes, **notes}))

    def remove(self, kind: str, object_id: str) -> None:
        owned = self.get(kind, object_id)
        if owned is None:
            return

        def run():
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(self._key(kind, object_id))
            pipe.zrem(self._index(kind, owned.tenant), object_id)
            pipe.execute()
        self.link.call("an owner record", run)

    def owned_by(self, kind: str, tenant: str) -> list[Owned]:
        ids = self.link.call("an owner list", lambda: self.redis.zrevrange(
            self._index(kind, tenant), 0, -1))
        if not ids:
            return []
        raws = self.link.call("an owner list", lambda: self.redis.mget(
            [self._key(kind, i.decode()) for i in ids]))
        return [Owned.from_line(json.loads(raw)) for raw in raws if raw is not None]

    def close(self) -> None:
        pass
