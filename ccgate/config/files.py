"""Writing the config files: the console's and the CLI's edits, checked, atomic and never
clobbering a hand edit.

One edit: take the lock (one writer at a time, across processes), read the file as it is on
disk, apply the change to that document, validate the result with every start-up rule, then
write it (``<file>.bak`` keeps the version before, a temp file is fsynced and renamed over the
file, mode 0600). If the file changed on disk while the edit was being made (a hand edit), the
edit is redone on the new version.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import gevent

from .load import Config, ConfigError, load_config
from .edits import EditRefused
from ..usage.record import iso_utc

T = TypeVar("T")
LOCK_FILE = ".ccgate-config.lock"
LOCK_WAIT_S = 5.0
ATTEMPTS = 3


class EditInvalid(Exception):
    """The edited config would not load: ``problems`` are start-up's ``file: path: message``."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a temp file renamed over it), mode 0600."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def to_text(doc: Any) -> str:
    """How the gateway writes a config document: 2-space JSON, UTF-8 as is, key order kept."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def iso_now() -> str:
    """``createdAt``/``updatedAt`` as the Node CCGate writes them: UTC with milliseconds."""
    return iso_utc(time.time())


def _stamp(path: Path) -> tuple:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size, st.st_ino


class ConfigFiles:
    """The config directory as something to edit; ``edit`` is the only way the gateway writes."""

    def __init__(self, config_dir: Path):
        self.config_dir = Path(config_dir)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.config_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + LOCK_WAIT_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:  # another writer: wait without blocking other greenlets
                    if e.errno not in (errno.EAGAIN, errno.EACCES) or \
                            time.monotonic() > deadline:
                        raise EditRefused(409, "another edit of the config is in progress; "
                                               "try again") from None
                    gevent.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self, path: Path) -> tuple[str, Any]:
        try:
            text = path.read_text(encoding="utf-8")
            return text, json.loads(text)
        except (OSError, ValueError) as e:
            raise EditRefused(409, f"{path.name} cannot be read ({e}); fix it by hand, then "
                                   f"try again") from None

    def edit(self, name: str, change: Callable[[Any], T]) -> tuple[T, Config]:
        """Apply ``change`` to file ``name``'s document and write it: ``change``'s result and
        the config as it now loads. EditInvalid (nothing written) when it would not load."""
        path = self.config_dir / name
        with self._locked():
            for _ in range(ATTEMPTS):
                stamp = _stamp(path)
                old_text, doc = self._read(path)
                result = change(doc)
                try:
                    config = load_config(self.config_dir, overrides={name: doc})
                except ConfigError as e:
                    raise EditInvalid(e.lines) from None
                if _stamp(path) != stamp or self._read(path)[0] != old_text:
                    # Edited by hand meanwhile: apply the change to that version. The content is
                    # compared too: an edit of the same size within the file system's time
                    # granularity leaves the stamp as it was.
                    continue
                write_atomically(path.with_name(path.name + ".bak"), old_text)
                write_atomically(path, to_text(doc))
                return result, config
        raise EditRefused(409, f"{name} kept changing on disk while it was being edited; "
                               f"try again")
