"""The embedded usage store: JSON-lines day files, the Node CCGate's layout.

``<data>/usage/<tenantId>/<YYYY-MM>/<YYYY-MM-DD>.json``, one record per line.

- Appends take an exclusive ``flock`` around one ``write`` of one whole line, so processes sharing
  the directory never interleave; no fsync per request (the page cache survives a process crash).
- A line torn by a crash (no final newline) is closed with a newline before the next append, and
  skipped with a warning when read; it never stops a read.
- Totals live in memory and are brought up to date by reading only the bytes appended since the
  last read, so every process sees the others' appends and a request's cost does not grow with
  the size of the day file.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import time
from collections import deque
from datetime import date, timedelta
from pathlib import Path
from typing import Iterable

from .store import DayTotals

log = logging.getLogger("ccgate.usage")

RECENT_PER_DAY = 200
PAST_DAY_RECHECK_S = 60.0


SAFE_ID = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9_.-]+")


def day_path(root: Path, tenant_id: str, day: date) -> Path:
    """The day file of a tenant; an id that could leave ``root`` is refused (ValueError)."""
    if not SAFE_ID.fullmatch(tenant_id):
        raise ValueError(f"unsafe tenant id {tenant_id!r}")
    return root / tenant_id / f"{day:%Y-%m}" / f"{day:%Y-%m-%d}.json"


class DayFile:
    """Incremental reader of one tenant's day file: totals and the newest records."""

    __slots__ = ("path", "offset", "totals", "recent", "checked", "_fh", "_ino")

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.totals = DayTotals()
        self.recent: deque[dict] = deque(maxlen=RECENT_PER_DAY)
        self.checked = 0.0
        self._fh = None
        self._ino = None

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


class FileStore:
    """Usage records in day files under ``<data_dir>/usage``."""

    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "usage"
        self._writers: dict[str, tuple[date, int]] = {}  # tenant -> (day, fd) of its open day file
        self._days: dict[tuple[str, date], DayFile] = {}

    # -- writing ----------------------------------------------------------------------------------
    def _writer(self, tenant_id: str, day: date) -> int:
        current = self._writers.get(tenant_id)
        if current is not None:
            if current[0] == day and os.fstat(current[1]).st_nlink:
                return current[1]
            os.close(current[1])  # a new day, or the file was deleted under us
        path = day_path(self.root, tenant_id, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        self._writers[tenant_id] = (day, fd)
        return fd

    def append(self, record: dict, day: date) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        fd = self._writer(record["tenantId"], day)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # close a line torn by a crash, so this one stays whole
            os.write(fd, line)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        df = self._days.get((record["tenantId"], day))
        if df is not None and df.offset == size and line[:1] != b"\n":
            # Nobody else wrote since this process last read: count the record directly
            # instead of reading it back and parsing it again.
            df.totals.add_record(record)
            df.recent.append(record)
            df.offset = size + len(line)

    # -- reading ----------------------------------------------------------------------------------
    def _day(self, tenant_id: str, day: date, today: date | None = None) -> DayFile:
        key = (tenant_id, day)
        df = self._days.get(key)
        if df is None:
            df = self._days[key] = DayFile(day_path(self.root, tenant_id, day))
            df.refresh()
        elif today is None or day >= today or time.monotonic() - df.checked > PAST_DAY_RECHECK_S:
            df.refresh()
        return df

    def day_totals(self, tenant_id: str, day: date) -> DayTotals:
        return self._day(tenant_id, day).totals

    def range_totals(self, tenant_id: str, first: date, last: date) -> list[tuple[date, DayTotals]]:
        """Past days are re-read at most once a minute; ``last`` (today) always."""
        out = []
        day = first
        while day <= last:
            df = self._day(tenant_id, day, today=last)
            if day < last:
                df.recent.clear()  # history needs totals only: keep memory and file handles low
                df.close()
            out.append((day, df.totals))
            day += timedelta(days=1)
        return out

    def month_cost(self, tenant_id: str, day: date) -> float:
        return sum(t.costUSD for _, t in self.range_totals(tenant_id, day.replace(day=1), day))

    def records(self, tenant_id: str, day: date) -> list[dict]:
        path = day_path(self.root, tenant_id, day)
        out = []
        if path.exists():
            for line in path.read_bytes().split(b"\n"):
                try:
                    record = json.loads(line) if line.strip() else None
                except ValueError:
                    record = None  # a torn line: skipped, as when totals are read
                if isinstance(record, dict):
                    out.append(record)
        return out

    def recent(self, day: date, limit: int, tenant_id: str | None = None) -> list[dict]:
        tenants = [tenant_id] if tenant_id else list(self.tenants())
        records = [r for t in tenants for r in self._day(t, day).recent]
        records.sort(key=lambda r: str(r.get("timestamp", "")), reverse=True)
        return records[:limit]

    def tenants(self) -> Iterable[str]:
        try:
            return sorted(p.name for p in self.root.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    def close(self) -> None:
        for _, fd in self._writers.values():
            os.close(fd)
        self._writers.clear()
        for df in self._days.values():
            df.close()
        self._days.clear()
