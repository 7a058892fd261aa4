"""One tenant's day file of usage records, and reading it incrementally.

``<data>/usage/<tenantId>/<YYYY-MM>/<YYYY-MM-DD>.json``, one JSON record per line (the Node
CCGate's layout). A line torn by a crash is skipped with a warning when read.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import time
from collections import deque
from datetime import date
from pathlib import Path

from .store import DayTotals

log = logging.getLogger("ccgate.usage")

RECENT_PER_DAY = 200


SAFE_ID = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9_.-]+")


def day_path(root: Path, tenant_id: str, day: date) -> Path:
    """The day file of a tenant; an id that could leave ``root`` is refused (ValueError)."""
    if not SAFE_ID.fullmatch(tenant_id):
        raise ValueError(f"unsafe tenant id {tenant_id!r}")
    return root / tenant_id / f"{day:%Y-%m}" / f"{day:%Y-%m-%d}.json"


class DayFile:
    """Incremental reader of one tenant's day file: totals and the newest records."""

    __slots__ = ("path", "offset", "totals", "recent", "checked", "_fh", "_ino")

    def __init__(self, path: Path, ino: int | None = None):
        """``ino``: the file is known to be empty (this process is writing its first line), so
        nothing needs reading until another process appends."""
        self.path = path
        self.offset = 0
        self.totals = DayTotals()
        self.recent: deque[dict] = deque(maxlen=RECENT_PER_DAY)
        self.checked = 0.0 if ino is None else time.monotonic()
        self._fh = None
        self._ino = ino

    def _reset(self) -> None:
        self.offset = 0
        self.totals = DayTotals()
        self.recent.clear()
        self._close()

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._fh, self._ino = None, None

    def refresh(self) -> None:
        """Read what was appended since the last call (by any process)."""
        self.checked = time.monotonic()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self.offset:
                self._reset()  # deleted (``clean``): nothing left to count
            return
        if self._ino is not None and st.st_ino != self._ino:
            self._reset()  # replaced by another file: count it from the start
        if st.st_size < self.offset:
            self._reset()  # truncated
        if st.st_size == self.offset:
            return
        if self._fh is None:
            self._fh = open(self.path, "rb")
            self._ino = st.st_ino
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_SH)
        try:
            self._fh.seek(self.offset)
            data = self._fh.read()
        finally:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        end = data.rfind(b"\n")
        if end < 0:
            return  # only part of a line so far
        for line in data[:end].split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except ValueError:
                log.warning("%s: skipped a damaged usage line (%d bytes)", self.path, len(line))
                continue
            self.totals.add_record(record)
            self.recent.append(record)
        self.offset += end + 1

    def close(self) -> None:
        self._close()
