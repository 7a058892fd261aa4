"""The spend rule, the ledgers that apply it, the private directory and the spool's checks
(issue 29): pure functions and files, no sockets."""
import json
import os
import tempfile
from datetime import date

import pytest

from ccgate.shared.ledger import FileLedger, MemoryLedger
from ccgate.shared.private_dir import UnsafeDirectory, ensure_private, private_dir
from ccgate.shared.spend_rule import spend_refusal
from ccgate.usage.pricing import PriceBook
from ccgate.usage.record import record_problem
from ccgate.usage.spool import FallbackSpool



@pytest.mark.parametrize("running,recent,any_running,amount,room,admitted", [
    (0, 0, False, 0.52, 0.10, True),  # alone: served however large
    (0, 0.2, False, 0.52, 0.10, False),  # what just finished already fills the room
    (0.5, 0, True, 0.5, 1.0, True),  # fits exactly
    (0.5, 0, True, 0.51, 1.0, False),
    (0.3, 0.2, True, 0.49, 1.0, True),
    (0.3, 0.2, True, 0.51, 1.0, False),
    (0, 0, False, 0.0, 0.0, False),  # no room at all
])
def test_spend_rule(running, recent, any_running, amount, room, admitted):
    verdict = spend_refusal(running, recent, any_running, amount, room)
    assert (verdict is None) == admitted
    if not admitted:
        assert verdict == pytest.approx(running + recent)


def overshoot(ledger, costs, limit, parallel):
    """Requests of worst case ``costs[i]`` (each really costing that) sent ``parallel`` at a
    time against ``limit``: what is spent in the end. Refused ones are retried later."""
    spent, queue, running = 0.0, list(costs), []
    while queue or running:
        while queue and len(running) < parallel and spent < limit:
            lease, refused = ledger.reserve("t", queue[0], lambda: limit - spent, 1000.0)
            if refused is not None:
                break
            running.append((lease, queue.pop(0)))
        if not running:
            break
        lease, cost = running.pop(0)
        spent += cost  # recorded first, then released
        ledger.unreserve("t", lease, cost, 1000.0)
    return spent


@pytest.mark.parametrize("make", [MemoryLedger, lambda: FileLedger(tempfile.mkdtemp())])
def test_twenty_claude_code_sized_requests_pass_a_limit_by_one_at_most(make):
    one = 32000 * 15 / 1e6 + 50_000 // 3 * 3 / 1e6  # Sonnet worst case of a 50 KB body
    assert 1.0 <= overshoot(make(), [one] * 20, 1.0, 20) <= 1.0 + one
    small = [0.012] * 200
    assert 1.0 <= overshoot(make(), small, 1.0, 20) <= 1.012


def test_worst_case_is_the_whole_max_tokens():
    prices = PriceBook(None)
    sonnet = "claude-sonnet-4-5-20250929"
    assert prices.estimate(sonnet, 0, 32000) == pytest.approx(32000 * 15 / 1e6)
    assert prices.estimate(sonnet, 3000, 1) == pytest.approx(1000 * 3 / 1e6 + 15 / 1e6)
    # no usable max_tokens: the most a model writes
    assert prices.estimate(sonnet, 0, "32000") == prices.estimate(sonnet, 0, 64000)
    assert prices.estimate(sonnet, 0, True) == prices.estimate(sonnet, 0, 64000)


def test_file_ledger_reads_the_spend_under_its_lock(tmp_path):
    """The race a separate read would leave open: another process records its cost and
    releases between this admission's reading of the spend and its reservation."""
    import fcntl
    ledger, other = FileLedger(tmp_path / "res"), FileLedger(tmp_path / "res")
    running, _ = other.reserve("t", 0.5, lambda: 1.0, 0)

    def room():
        # while the spend is read, nobody can release: the file is locked
        fd = os.open(tmp_path / "res" / "t.json", os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        return 1.0

    assert ledger.reserve("t", 0.6, room, 0) == (None, pytest.approx(0.5))
    other.unreserve("t", running, 1.0, 0)
    assert ledger.reserve("t", 0.6, lambda: 0.0, 0)[1] == 0.0  # no room at all: refused
    assert ledger.reserve("t", 0.6, lambda: 0.1, 0)[1] is None  # nothing running: alone


def test_file_ledger_refuses_a_planted_link(tmp_path):
    (tmp_path / "res").mkdir()
    (tmp_path / "elsewhere").write_text("{}")
    (tmp_path / "res" / "t.json").symlink_to(tmp_path / "elsewhere")
    from ccgate.shared.ledger import LedgerUnavailable
    with pytest.raises(LedgerUnavailable):
        FileLedger(tmp_path / "res").reserve("t", 0.1, lambda: 1.0, 1000.0)
    assert (tmp_path / "elsewhere").read_text() == "{}"


def test_private_dirs(tmp_path):
    ok = ensure_private(tmp_path / "p")
    assert ok.stat().st_mode & 0o777 == 0o700
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    with pytest.raises(UnsafeDirectory, match="other users"):
        ensure_private(open_dir)
    (tmp_path / "link").symlink_to(ok)
    with pytest.raises(UnsafeDirectory, match="not a directory"):
        ensure_private(tmp_path / "link")
    # the configured one is refused when unsafe; the default falls back to the data dir
    assert private_dir(tmp_path / "data", open_dir) is None
    chosen = private_dir(tmp_path / "data", None)
    assert chosen is not None and chosen.stat().st_uid == os.geteuid()


GOOD = {"requestId": "r1", "tenantId": "t", "timestamp": "2026-11-26T01:00:00.000Z",
        "model": "m", "totalCost": 0.5, "inputTokens": 3}


@pytest.mark.parametrize("change,problem", [
    ({}, None),
    ({"totalCost": -1000}, "totalCost"),
    ({"totalCost": float("nan")}, "totalCost"),
    ({"inputTokens": float("inf")}, "inputTokens"),
    ({"totalCost": "1"}, "totalCost"),
    ({"tenantId": "mallory"}, "no such tenant"),
    ({"requestId": None}, "requestId"),
])
def test_record_problem(change, problem):
    found = record_problem({**GOOD, **change}, frozenset({"t"}))
    assert (found is None) if problem is None else (problem in found)


def test_spool_replays_only_valid_records_from_regular_files(tmp_path):
    spool_dir = ensure_private(tmp_path / "spool")
    lines = [{"day": "2026-11-26", "record": GOOD},
             {"day": "2026-11-26", "record": {**GOOD, "requestId": "r2", "totalCost": -1000}},
             {"day": "2026-11-26", "record": {**GOOD, "requestId": "r3", "tenantId": "x"}}]
    (spool_dir / "usage-999999991.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines))
    os.mkfifo(spool_dir / "usage-999999992.jsonl")  # would hang a plain open
    (tmp_path / "target").write_text(json.dumps(lines[0]) + "\n")
    (spool_dir / "usage-999999993.jsonl").symlink_to(tmp_path / "target")
    replayed = list(FallbackSpool(spool_dir, frozenset({"t"})).leftovers())
    assert replayed == [(GOOD, date(2026, 11, 26))]


def test_a_user_dir_claimed_first_by_another_user_is_not_used(tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    claimed = tmp_path / f"ccgate-{os.geteuid()}"
    claimed.mkdir()
    claimed.chmod(0o777)  # as another user could leave it (or a link, or their own 0700 dir)
    chosen = private_dir(tmp_path / "data", None)
    assert chosen == tmp_path / "data" / "private"
    assert chosen.stat().st_mode & 0o777 == 0o700
    claimed.rmdir()
    chosen = private_dir(tmp_path / "data", None)
    assert chosen.parent == claimed and claimed.stat().st_mode & 0o777 == 0o700
