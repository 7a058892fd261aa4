"""A size-rotated log file that survives a full or read-only disk (see ``logs``)."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

REOPEN_AFTER_S = 1.0


def open_private(path: Path):
    """A log file for appending, readable by this user only (0600, also when it existed before):
    the logs hold tenant ids, paths and client addresses."""
    stream = open(path, "a", encoding="utf-8", opener=lambda p, flags: os.open(p, flags, 0o600))
    os.fchmod(stream.fileno(), 0o600)
    return stream


class RotatingFile(logging.Handler):
    """A size-rotated log file that the writer thread flushes once per batch of records.

    The stdlib's RotatingFileHandler formats every record twice (once to decide on rotation)
    and flushes after each one; at one access line per request that is most of the writer's CPU.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int):
        super().__init__()
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.lost = 0  # lines that could not be written
        self._broken_at = 0.0
        self.stream = open_private(self.path)
        self.size = self.stream.tell()

    def _usable(self) -> bool:
        if self.stream is not None:
            return True
        if time.monotonic() - self._broken_at < REOPEN_AFTER_S:
            return False
        try:
            self.stream = open_private(self.path)
            self.size = self.stream.tell()
            return True
        except OSError:
            self._broken_at = time.monotonic()
            return False

    def _broke(self) -> None:
        """A write failed: drop the file (and its unwritten buffer), reopen it later."""
        stream, self.stream = self.stream, None
        self._broken_at = time.monotonic()
        if stream is not None:
            try:
                stream.close()
            except Exception:
                pass  # the buffer that did not fit is what is lost

    def emit(self, record: logging.LogRecord) -> None:
        self.write_line(self.format(record) + "\n")

    def write_line(self, line: str) -> None:
        """One line, as it is (the access log's are JSON made by the caller)."""
        if not self._usable():
            self.lost += 1
            return
        try:
            if self.max_bytes and self.size and self.size + len(line) > self.max_bytes:
                self.rotate()
            self.stream.write(line)
            self.size += len(line)
        except Exception:
            self.lost += 1
            self._broke()

    def rotate(self) -> None:
        self.stream.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.backups:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self.stream = open_private(self.path)
        self.size = 0

    def flush(self) -> None:
        if self.stream is not None:
            try:
                self.stream.flush()
            except Exception:
                self.lost += 1
                self._broke()

    def close(self) -> None:
        self.flush()
        self._broke()
        super().close()
