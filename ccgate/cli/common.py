"""What every ``ccgate`` command shares: the directories and how to fail."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click


class Paths:
    def __init__(self, config_dir: str, data_dir: str):
        self.config_dir = Path(config_dir)
        self.data_dir = Path(data_dir)


def fail(lines: list[str], code: int = 1) -> None:
    """Print each problem line on stderr and exit with ``code`` (never a traceback)."""
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


def table(rows: list[tuple]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a temp file renamed over it), mode 0600."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
