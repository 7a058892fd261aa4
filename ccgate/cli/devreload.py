"""``python app.py --reload``: restart the server whenever code, templates or static files change."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WATCH = ("ccgate/**/*.py", "ccgate/config/schemas/*.json", "templates/**/*", "static/**/*", "app.py")


def _snapshot() -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for pattern in WATCH for p in ROOT.glob(pattern) if p.is_file()}


def run_with_reloader(argv: list[str], interval_s: float = 1.0) -> int:
    """Run ``python argv…`` as a child and start it again after every change (the Node `npm run dev`)."""
    while True:
        seen = _snapshot()
        child = subprocess.Popen([sys.executable, *argv])
        try:
            while child.poll() is None and _snapshot() == seen:
                time.sleep(interval_s)
        except KeyboardInterrupt:
            child.terminate()
            return child.wait()
        if child.poll() is not None:
            return child.returncode  # it stopped by itself (a config error): do not loop
        print("change detected: restarting CCGate", file=sys.stderr, flush=True)
        child.terminate()
        child.wait()
