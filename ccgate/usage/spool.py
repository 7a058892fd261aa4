"""Usage records that could not be written where they belong, kept until they are.

A record whose write failed (a full or read-only data disk) is kept in memory (bounded) and, so
that a crash does not lose it either, in a JSON-lines file in a directory private to this user
(``shared.private_dir``: by default off the data disk). The store retries them; a record leaves
the spool only once its write succeeded, and the spool file of a process that died is replayed by
the next one to start, skipping request ids already written. So every record is written exactly
once. Only regular files of this user are read back (no links, no FIFOs), and only records that
pass ``record_problem`` (a known tenant, no negative or non-finite numbers) count.
"""
from __future__ import annotations

import json
import logging
import os
import re
import stat
from datetime import date
from pathlib import Path
from typing import Iterator

from .record import record_problem

log = logging.getLogger("ccgate.usage")

MAX_PENDING = 100_000  # about 100 MB of records at most
MAX_SPOOL_FILE = 256 * 1024 * 1024
_FILE = re.compile(r"usage-(\d+)\.jsonl")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def append_private(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` in one write: never through a link, only to a regular file
    of this user (mode 0600 when created)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                 0o600)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise OSError(f"{path} is not a regular file of this user")
        if os.write(fd, data) != len(data):
            raise OSError("short write")
    finally:
        os.close(fd)


def read_private(path: Path) -> bytes:
    """A spool file's bytes, or OSError for anything but a regular file of this user under
    ``MAX_SPOOL_FILE`` (a link, a FIFO that would hang the start, another user's file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise OSError("not a regular file of this user")
        if st.st_size > MAX_SPOOL_FILE:
            raise OSError(f"over {MAX_SPOOL_FILE} bytes")
        parts = []
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def spooled_records(data: bytes, where: Path,
                    tenants: frozenset[str] | None) -> Iterator[tuple[dict, date]]:
    """The ``{"day", "record"}`` lines of a spool file that hold a valid record; every other
    line is skipped with a warning (split on "\\n" only, never at U+2028 inside a string)."""
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            record, day = item["record"], date.fromisoformat(item["day"])
        except (ValueError, KeyError, TypeError):
            log.warning("%s: skipped a damaged spool line", where)
            continue
        problem = record_problem(record, tenants)
        if problem:
            log.warning("%s: skipped a spooled record that is not valid (%s)", where, problem)
            continue
        yield record, day


class FallbackSpool:
    """Pending records of this process, in memory and mirrored to ``directory`` (private, see
    ``shared.private_dir``; None when there is none: memory only)."""

    def __init__(self, directory: Path | None, tenants: frozenset[str] | None = None):
        self.dir = Path(directory) if directory is not None else None
        self.path = self.dir / f"usage-{os.getpid()}.jsonl" if self.dir is not None else None
        self.tenants = tenants
        self.pending: dict[str, tuple[dict, date]] = {}
        # why the spool file cannot be written, if it cannot
        self.disk_error: str | None = None if self.dir is not None else (
            "no private directory for the spool (error.log says why)")

    def add(self, record: dict, day: date) -> bool:
        """Keep a record; False when even memory is full (the record is lost)."""
        if len(self.pending) >= MAX_PENDING:
            return False
        key = record.get("requestId") or os.urandom(8).hex()
        self.pending[key] = (record, day)
        line = json.dumps({"day": day.isoformat(), "record": record}, ensure_ascii=False,
                          separators=(",", ":")).encode() + b"\n"
        if self.path is None:
            return True
        try:
            append_private(self.path, line)
            self.disk_error = None
        except OSError as e:
            self.disk_error = f"{self.dir}: {e.strerror or e}"
        return True

    def written(self, key: str) -> None:
        """A pending record reached its day file."""
        self.pending.pop(key, None)
        if not self.pending and self.path is not None:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass  # a stale file is replayed (and deduplicated) at the next start

    def leftovers(self) -> Iterator[tuple[dict, date]]:
        """Records spooled by processes that have died, each file claimed by one process."""
        if self.dir is None:
            return
        try:
            names = [p for p in self.dir.iterdir() if _FILE.fullmatch(p.name)]
        except OSError:
            return
        for path in names:
            pid = int(_FILE.fullmatch(path.name).group(1))
            if pid == os.getpid() or _alive(pid):
                continue
            claimed = path.with_suffix(f".replaying-{os.getpid()}")
            try:
                os.rename(path, claimed)
            except OSError:
                continue
            try:
                data = read_private(claimed)
            except OSError as e:
                log.warning("%s: not replayed (%s)", claimed, e.strerror or e)
                data = b""
            yield from spooled_records(data, claimed, self.tenants)
            claimed.unlink(missing_ok=True)
