"""The audit log of console writes: one JSON line per change in ``data/logs/audit.log``.

A line says who changed what, from where and when, and which fields: never a value, so never a
key. Lines are appended under a file lock, whole or not at all, by every process.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections import deque
from pathlib import Path


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, *, time: str, user: str, ip: str, action: str, target: str,
              changed: list[str] | None = None) -> None:
        line = json.dumps({"time": time, "user": user, "ip": ip, "action": action,
                           "target": target, "changed": sorted(changed or [])},
                          ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)  # a console write is rare, and its trace should outlive a crash
        finally:
            os.close(fd)

    def latest(self, limit: int) -> list[dict]:
        """The last ``limit`` entries, newest first (a torn line is skipped)."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                lines = deque(f, maxlen=limit)
        except FileNotFoundError:
            return []
        out = []
        for line in reversed(lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
