"""The embedded usage store: JSON-lines day files, the Node CCGate's layout.

``<data>/usage/<tenantId>/<YYYY-MM>/<YYYY-MM-DD>.json``, one record per line.

- Appends take an exclusive ``flock`` around one ``write`` of one whole line, so processes sharing
  the directory never interleave; no fsync per request (the page cache survives a process crash).
- A line torn by a crash (no final newline) is closed with a newline before the next append, and
  skipped with a warning when read; it never stops a read.
- Totals live in memory and are brought up to date by reading only the bytes appended since the
  last read, so every process sees the others' appends and a request's cost does not grow with
  the size of the day file.
- A record that cannot be written (full or read-only disk) goes to a ``FallbackSpool`` and is
  retried (at the next append, at most once a second, and by ``retry_spooled``) until written
  exactly once; meanwhile it counts in the totals, so limits still hold. A short write is cut
  back, so no partial line can later turn into a whole one.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from contextlib import suppress
from datetime import date, timedelta
from pathlib import Path
from typing import Callable, Iterable

from ..core.json_line import json_line
from ..core.periodic import Periodic
from .dayfile import SAFE_ID, DayFile, day_path
from .find import find_in_file
from .spool import MAX_PENDING, FallbackSpool
from .store import DayTotals, latest

log = logging.getLogger("ccgate.usage")

PAST_DAY_RECHECK_S = 60.0

RETRY_EVERY_S = 1.0  # a record that could not be written is tried again at most this often
SPOOL_RETRY_S = 2.0  # ... and by the retry loop (when no request comes to do it)


class FileStore:
    """Usage records in day files under ``<data_dir>/usage``.

    Without ``spool`` (the CLI's reports) a failed write raises; with it, it is spooled.
    """

    def __init__(self, data_dir: Path, spool: FallbackSpool | None = None):
        self.root = Path(data_dir) / "usage"
        self._writers: dict[str, tuple[date, int]] = {}  # tenant -> (day, fd) of its open day file
        self._days: dict[tuple[str, date], DayFile] = {}
        self.spool = spool
        self._spooled: dict[tuple[str, date], DayTotals] = {}  # totals of pending records
        self.write_error: str | None = None  # why the last write to the day files failed
        self._last_retry = 0.0
        self._retrier = Periodic("usage spool retry", SPOOL_RETRY_S, self._retry_if_pending)
        if self.spool is not None:
            written: dict[tuple[str, date], set] = {}  # request ids each day file has
            for record, day in self.spool.leftovers():
                self._replay_leftover(record, day, written)

    # -- writing ----------------------------------------------------------------------------------
    def _writer(self, tenant_id: str, day: date) -> int:
        current = self._writers.get(tenant_id)
        if current is not None:
            if current[0] == day:
                return current[1]
            os.close(current[1])  # a new day
        path = day_path(self.root, tenant_id, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        self._writers[tenant_id] = (day, fd)
        return fd

    def _locked_writer(self, tenant_id: str, day: date) -> tuple[int, os.stat_result]:
        """The day file's descriptor, locked, and its status; a file deleted under us (no links
        left) is reopened. One ``fstat`` under the lock answers both."""
        while True:
            fd = self._writer(tenant_id, day)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                st = os.fstat(fd)
            except OSError:
                fcntl.flock(fd, fcntl.LOCK_UN)
                raise
            if st.st_nlink:
                return fd, st
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            del self._writers[tenant_id]

    def append(self, record: dict, day: date) -> None:
        if self.spool is None:
            self._write(record, day)
            return
        if self.spool.pending and time.monotonic() - self._last_retry >= RETRY_EVERY_S:
            self.retry_spooled()
        try:
            self._write(record, day)
            self.write_error = None
        except OSError as e:
            self._spool(record, day, e)

    def _write(self, record: dict, day: date) -> None:
        line = json_line(record) + b"\n"
        tenant_id = record["tenantId"]
        fd, st = self._locked_writer(tenant_id, day)
        size, df = st.st_size, self._days.get((tenant_id, day))
        if df is None and not size:
            # The day's first line: its totals start here, counted as they are written, so no
            # later reader (a limit, the watchdog's budgets) has to read the day back at once.
            df = self._days[(tenant_id, day)] = DayFile(day_path(self.root, tenant_id, day),
                                                        st.st_ino)
        try:
            # Unless this process wrote the file's end itself (a line it ended with "\n"),
            # look at the last byte.
            ours = df is not None and df.offset == size
            if size and not ours and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # close a line torn by a crash, so this one stays whole
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, "No space left on device (short write)")
        except OSError:
            with suppress(OSError):
                os.ftruncate(fd, size)  # no partial line may stay behind to be completed later
            raise
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        if ours and line[:1] != b"\n":
            # Nobody else wrote since this process last read: count the record directly
            # instead of reading it back and parsing it again.
            df.totals.add_record(record)
            df.recent.append(record)
            df.offset = size + len(line)

    # -- when the disk fails ------------------------------------------------------------------------
    def _spool(self, record: dict, day: date, error: OSError) -> None:
        first = self.write_error is None
        self.write_error = f"{self.root}: {error.strerror or error}"
        if not self.spool.add(record, day):
            log.error("usage record %s LOST: the data disk fails (%s) and %d records are already "
                      "spooled in memory", record.get("requestId"), self.write_error,
                      len(self.spool.pending))
            return
        self._spooled.setdefault((record["tenantId"], day), DayTotals()).add_record(record)
        if first:
            log.error("usage records cannot be written (%s): spooling them, retried every %.0f s",
                      self.write_error, RETRY_EVERY_S)

    def retry_spooled(self) -> int:
        """Write what the spool holds, oldest first, until a write fails; the number written."""
        self._last_retry = time.monotonic()
        done = 0
        for key, (record, day) in list(self.spool.pending.items()):
            try:
                self._write(record, day)
            except OSError as e:
                self.write_error = f"{self.root}: {e.strerror or e}"
                break
            self.spool.written(key)
            done += 1
        if done:
            self._spooled = {}
            for record, day in self.spool.pending.values():
                self._spooled.setdefault((record["tenantId"], day), DayTotals()).add_record(record)
            if not self.spool.pending:
                self.write_error = None
            log.warning("wrote %d spooled usage records (%d still pending)", done,
                        len(self.spool.pending))
        return done

    def _replay_leftover(self, record: dict, day: date, written: dict) -> None:
        """A record a dead process spooled: written unless its day file already has it. Each
        day file is read once for the whole replay (``written``): linear, not one read per
        record."""
        tenant = record.get("tenantId")
        if not isinstance(tenant, str) or not SAFE_ID.fullmatch(tenant):
            return
        ids = written.get((tenant, day))
        if ids is None:
            ids = written[(tenant, day)] = {r.get("requestId") for r in self.records(tenant, day)}
        if record.get("requestId") in ids:
            return
        ids.add(record.get("requestId"))
        try:
            self._write(record, day)
        except OSError as e:
            self._spool(record, day, e)

    @property
    def recording_ok(self) -> bool:
        """False while a record could be kept nowhere but in memory (refuse metered spend)."""
        if self.spool is None or self.write_error is None:
            return True
        return self.spool.disk_error is None and len(self.spool.pending) < MAX_PENDING

    def _retry_if_pending(self) -> None:
        if self.spool is not None and self.spool.pending:
            self.retry_spooled()

    def start(self) -> None:
        if self.spool is not None:
            self._retrier.start()

    def warning(self) -> str | None:
        return None

    def problem(self) -> str | None:
        """What is wrong with recording usage, for /health."""
        if self.write_error is None:
            return None
        where = (f"kept in memory only ({self.spool.disk_error})" if self.spool.disk_error
                 else f"spooled in {self.spool.dir}")
        return (f"usage records cannot be written ({self.write_error}): "
                f"{len(self.spool.pending)} {where}, retried every {RETRY_EVERY_S:.0f} s")

    def _with_spooled(self, tenant_id: str, day: date, totals: DayTotals) -> DayTotals:
        extra = self._spooled.get((tenant_id, day))
        if extra is None:
            return totals
        merged = DayTotals()
        merged.merge(totals)
        merged.merge(extra)
        return merged

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
        return self._with_spooled(tenant_id, day, self._day(tenant_id, day).totals)

    def range_totals(self, tenant_id: str, first: date, last: date) -> list[tuple[date, DayTotals]]:
        """Past days are re-read at most once a minute; ``last`` (today) always."""
        out = []
        day = first
        while day <= last:
            df = self._day(tenant_id, day, today=last)
            if day < last:
                df.recent.clear()  # history needs totals only: keep memory and file handles low
                df.close()
            out.append((day, self._with_spooled(tenant_id, day, df.totals)))
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
        return latest(out)

    def find(self, request_id: str, tenant_id: str, day: date, since: float | None,
             pause: Callable[[], None]) -> dict | None:
        return find_in_file(day_path(self.root, tenant_id, day), request_id, since, pause)

    def recent(self, day: date, limit: int, tenant_id: str | None = None) -> list[dict]:
        tenants = [tenant_id] if tenant_id else list(self.tenants())
        records = [r for t in tenants for r in latest(list(self._day(t, day).recent))]
        records.sort(key=lambda r: str(r.get("timestamp", "")), reverse=True)
        return records[:limit]

    def tenants(self) -> Iterable[str]:
        try:
            return sorted(p.name for p in self.root.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    def close(self) -> None:
        self._retrier.stop()
        for _, fd in self._writers.values():
            os.close(fd)
        self._writers.clear()
        for df in self._days.values():
            df.close()
        self._days.clear()
