"""What every ``ccgate`` command shares: the directories and how to fail."""
from __future__ import annotations

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
