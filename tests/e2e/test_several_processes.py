"""Processes that share a data dir: what one writes, the others see (real processes, no
server)."""
import json
import subprocess
import sys
from datetime import date

import pytest

from ccgate.shared.ledger import FileLedger
from ccgate.usage.dayfile import day_path
from ccgate.usage.store_file import FileStore
from tests.helpers import ROOT

DAY = date(2026, 11, 26)


def test_two_processes_append_concurrently(tmp_path):
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from datetime import date\n"
        "from ccgate.usage.store_file import FileStore\n"
        "s = FileStore(%r)\n"
        "for i in range(500):\n"
        "    s.append({'tenantId': 't', 'requestId': sys.argv[1] + str(i), 'totalCost': 0.001,"
        " 'pad': 'x' * 3000}, date(2026, 11, 26))\n"
    ) % (str(ROOT), str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", script, name]) for name in "ab"]
    assert all(p.wait(60) == 0 for p in procs)
    lines = day_path(tmp_path / "usage", "t", DAY).read_bytes().split(b"\n")
    assert lines[-1] == b""
    ids = {json.loads(line)["requestId"] for line in lines[:-1]}
    assert len(lines) - 1 == 1000 and len(ids) == 1000
    assert FileStore(tmp_path).day_totals("t", DAY).costUSD == pytest.approx(1.0)


def test_file_ledger_is_shared_between_processes_and_forgets_dead_ones(tmp_path):
    ledger = FileLedger(tmp_path / "res")
    mine, refused = ledger.reserve("t", 0.6, lambda: 1.0, 1000.0)
    assert mine and refused is None
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ccgate.shared.ledger import FileLedger\n"
            "l = FileLedger(%r)\n"
            "print(l.reserve('t', 0.6, lambda: 1.0, 0)[1], "
            "l.reserve('t', 0.3, lambda: 1.0, 0)[0] is not None)\n") % (str(ROOT), str(tmp_path / "res"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0.6", "True"]  # it saw this process's lease, then took room
    # that process is gone: its lease no longer holds anything
    assert ledger.reserve("t", 0.4, lambda: 1.0, 1000.0)[0] is not None
    ledger.unreserve("t", mine, 0.5, 1000.0)
    assert ledger.reserve("t", 0.6, lambda: 1.0, 1000.0)[0] is not None  # 0.4 + 0.6 fits
    assert (tmp_path / "res" / "t.json").stat().st_mode & 0o777 == 0o600


def test_a_large_spool_left_behind_is_replayed_in_linear_time(tmp_path):
    """Issue 32: the start-up replay read the whole day file again for every record."""
    import time
    from ccgate.shared.private_dir import ensure_private
    from ccgate.usage.spool import FallbackSpool
    spool_dir = ensure_private(tmp_path / "spool")
    rec = {"tenantId": "t", "timestamp": "2026-11-26T01:00:00.000Z", "model": "m",
           "totalCost": 0.001, "statusCode": 200}
    lines = "".join(json.dumps({"day": "2026-11-26", "record": {**rec, "requestId": f"r{i}"}})
                    + "\n" for i in range(20_000))
    (spool_dir / "usage-999999911.jsonl").write_text(lines + lines[:2000])  # and a duplicate
    started = time.monotonic()
    store = FileStore(tmp_path / "data", spool=FallbackSpool(spool_dir, frozenset({"t"})))
    assert time.monotonic() - started < 20  # 0.4 s here; the quadratic replay took over 100 s
    assert store.day_totals("t", DAY).requests == 20_000
