"""The mixed soak (bench/soak.py) in its short form: faults, a hot reload, a kill -9 and restart
(and a Redis restart), then exactly one record per completed request and no leaks."""
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.parametrize("store", ["file", "redis"])
def test_short_soak(store):
    if store == "redis" and not shutil.which("redis-server"):
        pytest.skip("!!! REDIS SOAK SKIPPED: no redis-server !!!")
    args = [sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "0.5", "--clients", "6"]
    proc = subprocess.run(args + (["--redis"] if store == "redis" else []), capture_output=True,
                          text=True, timeout=240)
    result = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-3000:]
    print(result)
    assert proc.returncode == 0, result
    assert '"missing": 0' in result and '"duplicated": 0' in result
