"""Who created each upstream object (file, skill, message batch), and on which upstream.

The gateway owns upstream objects per tenant: ``OwnerFile`` keeps the record in
``<data dir>/owners.jsonl``, one JSON line per change (append-only, each line one write under
``flock``, so processes sharing the data dir never interleave); every process reads only what
was appended since its last look, so a lookup costs one ``fstat`` when nothing changed. The Redis
store keeps the same records for several instances (``owners_redis.py``).

A record holds the object as the upstream last described it (at creation, then each retrieve
that passed through the gateway), so a tenant's list is answered from here without asking the
upstream for everybody's objects.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger("ccgate")


@dataclass
class Owned:
    kind: str  # files, skills, batches
    id: str
    tenant: str
    upstream: str | None
    created: float
    object: dict = field(default_factory=dict)
    # The gateway's own facts about the object, never shown to the tenant: for a batch its
    # worst-case cost (``estimateUSD``) and how far its results were billed
    # (``resultsBilled``: result lines; ``resultsDone``: a whole download passed).
    notes: dict = field(default_factory=dict)

    def line(self, op: str) -> dict:
        return {"op": op, "kind": self.kind, "id": self.id, "tenant": self.tenant,
                "upstream": self.upstream, "created": self.created, "object": self.object,
                "notes": self.notes}

    @classmethod
    def from_line(cls, doc: dict) -> "Owned":
        """Raises KeyError, TypeError or ValueError for a line not written by ``line``."""
        notes = doc.get("notes") or {}
        if not isinstance(notes, dict):
            raise TypeError("notes")
        return cls(doc["kind"], doc["id"], doc["tenant"], doc["upstream"], float(doc["created"]),
                   doc["object"], notes)


class OwnerStore(Protocol):
    def add(self, owned: Owned) -> None:
        """Record a new object (raises OSError or a Redis error when it cannot be kept)."""

    def get(self, kind: str, object_id: str) -> Owned | None: ...

    def update(self, owned: Owned) -> None:
        """The object as the upstream describes it now (a retrieve passed through)."""

    def note(self, kind: str, object_id: str, notes: dict) -> None:
        """Merge ``notes`` into the object's notes."""

    def remove(self, kind: str, object_id: str) -> None: ...

    def owned_by(self, kind: str, tenant: str) -> list[Owned]:
        """The tenant's objects of ``kind``, newest first."""

    def close(self) -> None: ...


class OwnerFile:
    """Owner records in one append-only JSON-lines file of the data dir."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._offset = 0
        self._ino: int | None = None
        self._records: dict[tuple[str, str], Owned] = {}
        self._by_tenant: dict[tuple[str, str], dict[str, Owned]] = {}  # (kind, tenant) -> id
        self._refresh()

    def _apply(self, doc: dict) -> None:
        try:
            key = (doc["kind"], doc["id"])
            old = self._records.get(key)
            if doc["op"] == "del" and old is not None:
                del self._records[key]
                self._by_tenant.get((old.kind, old.tenant), {}).pop(old.id, None)
            elif doc["op"] == "set" and old is not None:
                old.object = doc["object"]
            elif doc["op"] == "note" and old is not None and isinstance(doc["notes"], dict):
                old.notes = {**old.notes, **doc["notes"]}
            elif doc["op"] == "add" and old is None:  # an id is owned once, by its creator
                owned = self._records[key] = Owned.from_line(doc)
                self._by_tenant.setdefault((owned.kind, owned.tenant), {})[owned.id] = owned
        except (KeyError, TypeError, ValueError):
            log.warning("%s: skipped a damaged line", self.path)

    def _refresh(self) -> None:
        """Read what was appended since the last look (by any process)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if st.st_ino != self._ino:  # a new file (or the first look): from its start
            self._ino, self._offset, self._records, self._by_tenant = st.st_ino, 0, {}, {}
        if st.st_size <= self._offset:
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read(st.st_size - self._offset)
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        for line in data[:end].split(b"\n"):
            if line.strip():
                try:
                    self._apply(json.loads(line))
                except ValueError:
                    log.warning("%s: skipped a damaged line", self.path)
        self._offset += end

    def _append(self, doc: dict) -> None:
        line = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # after a line a crash tore
            if os.write(fd, line) != len(line):
                os.ftruncate(fd, size)
                raise OSError("short write")
        finally:
            os.close(fd)
        self._refresh()

    def add(self, owned: Owned) -> None:
        self._append(owned.line("add"))

    def get(self, kind: str, object_id: str) -> Owned | None:
        self._refresh()
        return self._records.get((kind, object_id))

    def update(self, owned: Owned) -> None:
        self._append({"op": "set", "kind": owned.kind, "id": owned.id, "object": owned.object})

    def note(self, kind: str, object_id: str, notes: dict) -> None:
        self._append({"op": "note", "kind": kind, "id": object_id, "notes": notes})

    def remove(self, kind: str, object_id: str) -> None:
        self._append({"op": "del", "kind": kind, "id": object_id})

    def owned_by(self, kind: str, tenant: str) -> list[Owned]:
        self._refresh()
        found = self._by_tenant.get((kind, tenant), {}).values()
        return sorted(found, key=lambda o: o.created, reverse=True)

    def close(self) -> None:
        pass
