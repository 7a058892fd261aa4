"""Hot reload: a greenlet watching the config files' mtimes (``SIGHUP`` forces a check)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from ..core.periodic import Periodic
from .load import PRICING_FILE, REQUIRED_FILES, Config, ConfigError, load_config

log = logging.getLogger("ccgate.reload")
WATCHED = REQUIRED_FILES + (PRICING_FILE,)


def rejection(lines: list[str]) -> str:
    """What a rejected reload means for the operator, in one sentence."""
    more = f" (and {len(lines) - 1} more problem{'s' if len(lines) > 2 else ''})" \
        if len(lines) > 1 else ""
    return (f"the config files were changed but cannot be loaded, so the gateway still runs the "
            f"previous config: {lines[0] if lines else 'unknown problem'}{more}; fix the file "
            f"and save it again (python cli.py validate lists every problem)")


class ConfigWatcher:
    """Reloads the config when a file changes; a version that fails validation is rejected, with
    every problem logged, and the running config stays."""

    def __init__(self, config_dir: Path, apply: Callable[[Config], None], interval_s: float = 1.0):
        self.config_dir = Path(config_dir)
        self.apply = apply
        self.interval_s = interval_s
        self._stamp = self._stamps()
        self._loop = Periodic("config watcher", interval_s, self.check)
        # Why the files on disk are not what runs (the last reload was rejected); None when
        # they are. /health and the dashboard show it.
        self.problem: str | None = None

    def _stamps(self) -> tuple:
        out = []
        for name in WATCHED:
            try:
                st = os.stat(self.config_dir / name)
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def check(self, force: bool = False) -> bool:
        """Reload if a file changed (or ``force``); True when a new config was applied."""
        stamp = self._stamps()
        if stamp == self._stamp and not force:
            return False
        self._stamp = stamp
        try:
            config = load_config(self.config_dir)
        except ConfigError as e:
            for line in e.lines:
                log.error("config reload rejected: %s", line)
            self.problem = rejection(e.lines)
            log.error("%s", self.problem)
            return False
        self.problem = None
        self.apply(config)
        for warning in config.warnings:
            log.warning("%s", warning)
        log.info("config reloaded: %d upstreams, %d tenants", len(config.upstreams),
                 len(config.tenants))
        return True

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
