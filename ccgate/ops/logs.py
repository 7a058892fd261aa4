"""Logging: rotating files and the console, written by a real OS thread off the request path.

- ``<data>/logs/combined.log``: every application log line; ``error.log``: warnings and errors;
  ``access.log``: one JSON object per request (``ccgate.access``); the console unless
  ``logging.enableConsole`` is false.
- Files rotate by size (``logging.maxFileSize``, default 100 MB; ``logging.maxFiles`` kept, default 5).
- Request handlers only put records on a queue; one thread (a real one, not a greenlet, so a slow
  disk never stalls the event loop) formats and writes everything, in batches: it waits
  ``BATCH_WAIT_S`` (50 ms) after a record arrives, so lines reach the files that much later and
  the thread takes the GIL from the request loop once per batch, not once per request.
- Each line carries the request id (``x-request-id``) of the request that logged it.
- A write error (a full or read-only disk) never stops the writer: the failing file is closed and
  reopened at most once a second, lines meanwhile are lost (and counted), and writing resumes when
  the disk has room. The queue is bounded: past ``MAX_QUEUE`` records waiting, the oldest access
  lines are dropped and counted; a request never waits for the log.
"""
from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from gevent.monkey import get_original

from ..core.json_line import json_line
from .logfile import RotatingFile
from ..config.settings import LoggingConfig

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR}
FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
ACCESS = "ccgate.access"

_start_thread = get_original("_thread", "start_new_thread")
_allocate_lock = get_original("_thread", "allocate_lock")
_SimpleQueue = get_original("queue", "SimpleQueue")
_sleep = get_original("time", "sleep")
# Once a record arrives, the writer waits this long for others before writing them all: one
# wake-up (and one taking of the GIL from the request loop) per batch, not per request.
BATCH_WAIT_S = 0.05


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request's id ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            try:
                from flask import g, has_request_context
                record.request_id = g.get("request_id", "-") if has_request_context() else "-"
            except ImportError:  # pragma: no cover - flask is always installed
                record.request_id = "-"
        return True


class _OnlyAccess(logging.Filter):
    def __init__(self, wanted: bool):
        super().__init__()
        self.wanted = wanted

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.name == ACCESS) == self.wanted


MAX_QUEUE = 50_000


class Access(dict):
    """One access line's fields, queued as they are: no LogRecord, no formatting, no filters on
    the request's path (the writer thread makes the JSON)."""

    name = ACCESS


class BackgroundLog:
    """A queue of records and the OS thread that hands them to the real handlers."""

    def __init__(self, handlers: list[logging.Handler], access_file: RotatingFile | None = None,
                 console: logging.Handler | None = None, console_access: bool = False):
        self.handlers = handlers
        self.access_file = access_file
        self.console = console
        self.console_access = console_access  # one short console line per request
        self.dropped = 0  # access lines dropped because the queue was full
        self.queue = _SimpleQueue()
        self._stopped = _allocate_lock()
        self._stopped.acquire()
        _start_thread(self._run, ())

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self.queue.get()]
            if batch[0] is not None:
                _sleep(BATCH_WAIT_S)
            while len(batch) < 5000:  # take what else is queued, then write it in one go
                try:
                    batch.append(self.queue.get_nowait())
                except Exception:  # queue.Empty
                    break
            if self.queue.qsize() > MAX_QUEUE:  # falling behind: the oldest access lines go
                kept = [r for r in batch if r is None or r.name != ACCESS]
                self.dropped += len(batch) - len(kept)
                batch = kept
            for record in batch:
                if record is None:
                    stopping = True
                    break
                self._write(record)
            for handler in self.handlers:
                self._guard(handler.flush)
        for handler in self.handlers:
            self._guard(handler.close)
        self._stopped.release()

    def _write(self, record) -> None:
        if isinstance(record, Access):
            self._write_access(record)
            return
        for handler in self.handlers:
            if record.levelno >= handler.level:
                self._guard(handler.handle, record)

    def _write_access(self, fields: Access) -> None:
        """The JSON line in access.log; on the console (at "info"), ``POST /path tenant 200 12 ms``."""
        if self.access_file is not None:
            self._guard(self.access_file.write_line, json_line(fields).decode() + "\n")
        if self.console_access and self.console is not None:
            line = (f"{fields['time']} {fields['method']} {fields['path']} "
                    f"{fields['tenantId'] or '-'} {fields['status']} {fields['durationMs']:.0f} ms\n")
            self._guard(self.console.stream.write, line)

    @staticmethod
    def _guard(fn, *args) -> None:
        """One handler's failure never ends the writer thread (nor reaches stderr)."""
        try:
            fn(*args)
        except Exception:
            pass

    def put(self, record: logging.LogRecord) -> None:
        """Queue a record; never blocks. Access lines are dropped while the queue is full."""
        if record.name == ACCESS and self.queue.qsize() >= 2 * MAX_QUEUE:
            self.dropped += 1
            return
        self.queue.put(record)

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, close the files."""
        self.queue.put(None)
        self._stopped.acquire(timeout=timeout)


class _Front(logging.handlers.QueueHandler):
    """What request handlers log to: hands records to the writer, never waiting."""

    def __init__(self, writer: BackgroundLog):
        super().__init__(writer.queue)
        self.writer = writer

    def enqueue(self, record: logging.LogRecord) -> None:
        self.writer.put(record)


_current: tuple[BackgroundLog, list[logging.Handler]] | None = None


def setup_logging(settings: LoggingConfig, data_dir: Path) -> BackgroundLog:
    """Route the ``ccgate`` loggers through a background writer; replaces an earlier setup."""
    global _current
    stop_logging()
    log_dir = Path(data_dir) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    max_bytes, keep = settings.max_file_bytes, settings.max_files
    formatter = logging.Formatter(FORMAT)

    def rotating(name: str, level: int, access: bool) -> logging.Handler:
        h = RotatingFile(log_dir / name, max_bytes, keep)
        h.setLevel(level)
        h.setFormatter(logging.Formatter("%(message)s") if access else formatter)
        h.addFilter(_OnlyAccess(access))
        return h

    access_file = rotating("access.log", logging.DEBUG, True)
    targets = [rotating("combined.log", logging.DEBUG, False),
               rotating("error.log", logging.WARNING, False), access_file]
    console, console_access = None, False
    if settings.console:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(formatter)
        console.addFilter(_OnlyAccess(False))  # its access lines come from the writer's own path
        # One short line per request at "info", so a newcomer sees traffic arrive.
        console_access = LEVELS.get(settings.level, logging.INFO) <= logging.INFO
        targets.append(console)
    writer = BackgroundLog(targets, access_file, console, console_access)
    front = _Front(writer)
    front.addFilter(RequestIdFilter())
    installed = []
    for name, level in (("ccgate", LEVELS.get(settings.level, logging.INFO)),
                        (ACCESS, logging.INFO)):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(front)
        logger.propagate = False
        installed.append(front)
    _current = (writer, installed)
    return writer


def stop_logging() -> None:
    """Flush and close the background writer (at shutdown, or before a new setup)."""
    global _current
    if _current is None:
        return
    writer, fronts = _current
    for name in ("ccgate", ACCESS):
        logger = logging.getLogger(name)
        for front in fronts:
            logger.removeHandler(front)
        logger.propagate = True
    writer.stop()
    _current = None


def log_problem() -> str | None:
    """Why log files are not being written right now, if they are not (for /health)."""
    if _current is None:
        return None
    writer = _current[0]
    files = [h for h in writer.handlers if isinstance(h, RotatingFile)]
    broken = [h.path.name for h in files if h.stream is None]
    if not broken:
        return None
    return (f"log files cannot be written ({', '.join(broken)}): {sum(h.lost for h in files)} "
            f"lines lost so far, {writer.dropped} access lines dropped")


def access_line(**fields) -> None:
    """One JSON line in access.log (never a key or a body: callers pass only what is listed)."""
    if _current is not None:
        _current[0].put(Access(fields))  # the fast path: straight onto the writer's queue
        return
    logging.getLogger(ACCESS).info(json_line(fields).decode())
