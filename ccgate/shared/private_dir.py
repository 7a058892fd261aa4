"""Directories only this gateway's user may touch: the fallback spool and the spend ledger.

Another user of the machine must not be able to plant, replace or read what lives there. A
directory is used only when ``lstat`` shows a real directory (no symbolic link) owned by this
process's user that nobody else may write; it is created with mode 0700 when missing. The
default sits under the system temp dir (off the data disk, which may be the one that is full),
in ``ccgate-<uid>``, a name another user can claim first: then the data dir is used instead.
"""
from __future__ import annotations

import logging
import os
import stat
import tempfile
from hashlib import sha256
from pathlib import Path

log = logging.getLogger("ccgate.usage")


class UnsafeDirectory(Exception):
    """The directory exists but is not private to this user (the message says why)."""


def ensure_private(path: Path) -> Path:
    """``path`` as a private directory: created 0700 if missing, else checked; raises
    UnsafeDirectory (or OSError when it cannot be created)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeDirectory(f"{path} is not a directory (a link or a file stands there)")
    if st.st_uid != os.geteuid():
        raise UnsafeDirectory(f"{path} belongs to another user (uid {st.st_uid})")
    if st.st_mode & 0o022:
        raise UnsafeDirectory(f"{path} may be written by other users "
                              f"(mode {stat.S_IMODE(st.st_mode):o}): chmod 700 it")
    return path


def private_dir(data_dir: Path, configured: Path | None) -> Path | None:
    """The private directory for this data dir: ``configured`` (``storage.spoolDir``), else
    ``<tmp>/ccgate-<uid>/<hash of the data dir>``, else ``<data dir>/private``; None (and an
    error in the log) when none is safe."""
    if configured:
        chain = [[Path(configured)]]
    else:
        digest = sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]
        user_dir = Path(tempfile.gettempdir()) / f"ccgate-{os.geteuid()}"
        chain = [[user_dir, user_dir / digest], [Path(data_dir) / "private"]]
    for levels in chain:
        try:
            levels[0].parent.mkdir(parents=True, exist_ok=True)
            for level in levels:
                ensure_private(level)
            return levels[-1]
        except (OSError, UnsafeDirectory) as e:
            log.error("not using %s for the usage spool and spend ledger: %s", levels[-1], e)
    return None
