"""Usage records that could not be written where they belong, kept until they are.

A record whose write failed (a full or read-only data disk) is kept in memory (bounded) and, so
that a crash does not lose it either, in a JSON-lines file in another directory (by default under
the system temp dir). The store retries them; a record leaves the spool only once its write
succeeded, and the spool file of a process that died is replayed by the next one to start,
skipping request ids already written. So every record is written exactly once.
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from datetime import date
from hashlib import sha256
from pathlib import Path
from typing import Iterator

log = logging.getLogger("ccgate.usage")

MAX_PENDING = 100_000  # about 100 MB of records at most
_FILE = re.compile(r"usage-(\d+)\.jsonl")


def default_spool_dir(data_dir: Path) -> Path:
    """``<tmp>/ccgate-spool-<hash of the data dir>``: off the data disk, one per data dir."""
    digest = sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"ccgate-spool-{digest}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lines(path: Path) -> Iterator[dict]:
    """The JSON objects of a JSON-lines file; split on "\\n" only (never U+2028 inside a string),
    damaged lines skipped."""
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            log.warning("%s: skipped a damaged line", path)
            continue
        if isinstance(doc, dict):
            yield doc


class FallbackSpool:
    """Pending records of this process, in memory and mirrored to ``directory``."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.path = self.dir / f"usage-{os.getpid()}.jsonl"
        self.pending: dict[str, tuple[dict, date]] = {}
        self.disk_error: str | None = None  # why the spool file cannot be written, if it cannot

    def add(self, record: dict, day: date) -> bool:
        """Keep a record; False when even memory is full (the record is lost)."""
        if len(self.pending) >= MAX_PENDING:
            return False
        key = record.get("requestId") or os.urandom(8).hex()
        self.pending[key] = (record, day)
        line = json.dumps({"day": day.isoformat(), "record": record}, ensure_ascii=False,
                          separators=(",", ":")).encode() + b"\n"
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if os.write(fd, line) != len(line):
                    raise OSError("short write")
            finally:
                os.close(fd)
            self.disk_error = None
        except OSError as e:
            self.disk_error = f"{self.dir}: {e.strerror or e}"
        return True

    def written(self, key: str) -> None:
        """A pending record reached its day file."""
        self.pending.pop(key, None)
        if not self.pending:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass  # a stale file is replayed (and deduplicated) at the next start

    def leftovers(self) -> Iterator[tuple[dict, date]]:
        """Records spooled by processes that have died, each file claimed by one process."""
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
            for item in read_lines(claimed):
                try:
                    yield item["record"], date.fromisoformat(item["day"])
                except (KeyError, TypeError, ValueError):
                    log.warning("%s: skipped a damaged spool line", claimed)
            claimed.unlink(missing_ok=True)
