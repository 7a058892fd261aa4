"""Several gateway instances sharing one Redis: usage, limits, balancing, health, outages."""
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import gevent
import gevent.pool
import pytest
import requests

from ccgate.usage.store_file import FileStore
from tests.helpers import TENANT_KEY, upstream_entry, write_config
from tests.e2e.servers import REDIS, RedisServer, free_port, wait_until, wait_up
from tests.mock_upstream import MockResponse, error_body

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not REDIS, reason="!!! REDIS TESTS SKIPPED: no redis-server "
                                                   "(apt-get install redis-server) !!!")
ASK = {"model": "claude-sonnet-4-20250514", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
COST = (25 * 3 + 12 * 15) / 1e6




# -- the store contract, for both backends ---------------------------------------------------------
@pytest.fixture(params=["file", "redis"])
def store(request, tmp_path):
    if request.param == "file":
        s = FileStore(tmp_path)
        yield s
    else:
        if not REDIS:
            pytest.skip("no redis-server")
        server = RedisServer(tmp_path).start()
        from ccgate.usage.store_redis import RedisStore
        s = RedisStore(server.url, "c:", tmp_path)
        yield s
        s.close()
        server.stop()


def rec(rid, tenant="t", model="claude-sonnet-4", cost=0.5, status=200, ts="2026-11-26T01:00:00.000Z"):
    return {"requestId": rid, "tenantId": tenant, "timestamp": ts, "model": model,
            "inputTokens": 10, "outputTokens": 5, "cacheCreationTokens": 1, "cacheReadTokens": 2,
            "totalTokens": 18, "totalCost": cost, "statusCode": status,
            "errorType": None if status < 400 else "api_error"}


def test_store_contract(store):
    d1, d2 = date(2026, 11, 25), date(2026, 11, 26)
    store.append(rec("a", cost=1.0, ts="2026-11-25T01:00:00.000Z"), d1)
    store.append(rec("b"), d2)
    store.append(rec("c", model="claude-opus-4", status=529, cost=0), d2)
    store.append(rec("d", tenant="u"), d2)
    t = store.day_totals("t", d2)
    assert (t.requests, t.errors, t.inputTokens, t.totalTokens, t.costUSD) == (2, 1, 20, 36, 0.5)
    assert t.by_model["claude-opus-4"].errors == 1 and t.by_model["claude-sonnet-4"].requests == 1
    assert [x.requests for _, x in store.range_totals("t", d1, d2)] == [1, 2]
    assert store.month_cost("t", d2) == pytest.approx(1.5)
    assert [r["requestId"] for r in store.records("t", d2)] == ["b", "c"]
    assert {r["requestId"] for r in store.recent(d2, 10)} == {"b", "c", "d"}
    assert [r["requestId"] for r in store.recent(d2, 10, "u")] == ["d"]
    assert list(store.tenants()) == ["t", "u"]
    assert store.day_totals("nobody", d2).requests == 0
    store.append({**rec("e"), "upstream": "mirror", "upstreamCost": 0.15, "listCost": 0.5,
                  "totalCost": 0.6}, d2)
    t = store.day_totals("t", d2)
    mirror = t.by_upstream["mirror"]
    assert (mirror.requests, mirror.upstreamCostUSD, mirror.listCostUSD, mirror.costUSD) == \
        (1, pytest.approx(0.15), pytest.approx(0.5), pytest.approx(0.6))
    assert t.upstreamCostUSD == pytest.approx(0.15) and t.listCostUSD == pytest.approx(1.0)


# -- instances acting as one -----------------------------------------------------------------------
def post(gw, key=TENANT_KEY, **extra):
    return requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": key}, json={**ASK, **extra})


def test_round_robin_alternates_globally(make_mock, shared_gateways):
    a, b = make_mock("a"), make_mock("b")
    ups = [upstream_entry(a), upstream_entry(b)]
    gw1, gw2 = shared_gateways(ups), shared_gateways(ups)
    order = []
    for i in range(8):
        post(gw1 if i % 2 == 0 else gw2)
        order.append("a" if len(a.requests) > order.count("a") else "b")
    assert order == ["a", "b"] * 4  # each instance alone would have sent every request to a


def test_cooldown_by_one_instance_is_seen_by_the_other(make_mock, shared_gateways):
    a, b = make_mock("a"), make_mock("b")
    a.handler = lambda req: MockResponse(429, headers=[("content-type", "application/json"),
                                                       ("retry-after", "30")],
                                         body=error_body("rate_limit_error", "slow down"))
    ups = [upstream_entry(a), upstream_entry(b)]
    gw1, gw2 = shared_gateways(ups), shared_gateways(ups)
    assert post(gw1).status_code == 200  # a failed, b answered
    hits = len(a.requests)
    for _ in range(4):
        assert post(gw2).status_code == 200
    assert len(a.requests) == hits  # gw2 never tried a: cooled down by gw1


def test_sticky_pins_are_shared(make_mock, shared_gateways):
    mocks = [make_mock(n) for n in "abc"]
    ups = [upstream_entry(m) for m in mocks]
    gw1, gw2 = shared_gateways(ups), shared_gateways(ups)
    for i in range(6):
        post(gw1 if i % 2 else gw2, metadata={"user_id": "conversation-7"})
    assert sorted(len(m.requests) for m in mocks) == [0, 0, 6]


def test_shared_usage_and_one_daily_limit_across_processes(make_mock, tmp_path, redis_server):
    mock = make_mock("m")
    config = write_config(tmp_path / "cfg", [upstream_entry(mock)], server={
        "storage": {"type": "redis", "url": redis_server.url, "prefix": "p:"}},
        tenants=[{"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": 5 * COST - 1e-9}}}])
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config-dir", str(config),
                               "--data-dir", str(tmp_path / f"d{i}"), "--host", "127.0.0.1", "--port", str(p)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i, p in enumerate(ports)]
    try:
        for p in ports:
            wait_up(f"http://127.0.0.1:{p}/health")
        statuses = []
        for i in range(10):
            r = requests.post(f"http://127.0.0.1:{ports[i % 2]}/anthropic/v1/messages",
                              headers={"x-api-key": TENANT_KEY}, json=ASK)
            statuses.append(r.status_code)
        assert statuses == [200] * 5 + [429] * 5  # one limit, whichever instance is asked
        assert len(mock.requests) == 5
        for p in ports:
            today = requests.get(f"http://127.0.0.1:{p}/usage", headers={"x-api-key": TENANT_KEY}).json()
            assert today["today"]["requests"] == 5
            assert today["today"]["costUSD"] == pytest.approx(5 * COST)
            assert today["limits"]["daily"]["exceeded"] is True
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def test_redis_outage_fails_open_and_spooled_records_arrive(make_mock, shared_gateways, redis_server):
    mock = make_mock("m")
    gw = shared_gateways([upstream_entry(mock)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": 100}, "rpm": 1000,
                                                      "concurrency": 10}}])
    for _ in range(3):
        assert post(gw).status_code == 200
    redis_server.stop()
    for _ in range(4):
        r = post(gw)
        assert r.status_code == 200  # limits and balancing fail open
    health = requests.get(gw.url + "/health").json()
    assert health["status"] == "degraded" and health["storage"]["ok"] is False
    assert requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY}).status_code == 503
    spool = list(gw.gateway.private_dir.glob("redis-usage-*.jsonl"))
    assert spool and len(spool[0].read_text().splitlines()) == 4
    redis_server.start()  # same port, empty (no persistence): only what is replayed counts
    deadline = time.monotonic() + 10
    while True:
        r = requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY})
        if r.status_code == 200 and r.json()["today"]["requests"] == 4:
            break
        assert time.monotonic() < deadline, r.text
        gevent.sleep(0.2)
    assert r.json()["today"]["costUSD"] == pytest.approx(4 * COST)
    assert not list(gw.gateway.private_dir.glob("redis-usage-*.jsonl"))
    assert post(gw).status_code == 200
    assert requests.get(gw.url + "/health").json()["status"] == "ok"


def test_export_import_between_file_and_redis(tmp_path, redis_server):
    from ccgate.cli import cli
    from click.testing import CliRunner
    files = FileStore(tmp_path / "data")
    for i in range(3):
        files.append(rec(f"r{i}", tenant="alice"), date(2026, 11, 26))
    files.close()
    d = write_config(tmp_path / "cfg", [{"id": "a", "url": "http://127.0.0.1:1"}])
    base = ["--config-dir", str(d), "--data-dir", str(tmp_path / "data")]
    out = CliRunner().invoke(cli, base + ["usage", "export", "--from", "2026-11-01", "--to", "2026-11-30"])
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["requestId"] == "r0"
    env = {"CCGATE_REDIS_URL": redis_server.url}
    for _ in range(2):  # importing twice adds nothing the second time
        result = CliRunner(env=env).invoke(cli, base + ["usage", "import", "-"], input="\n".join(lines))
        assert result.exit_code == 0, result.output
    assert "imported 0 records (3 already there" in result.stdout
    from ccgate.usage.store_redis import RedisStore
    rs = RedisStore(redis_server.url, "ccgate:", tmp_path)
    assert rs.day_totals("alice", date(2026, 11, 26)).requests == 3
    rs.close()


# -- Redis faults (issue 21) -----------------------------------------------------------------------
LIMITED = [{"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": 100}, "rpm": 1000,
                                                         "concurrency": 1}}]



def test_frozen_redis_costs_one_timeout_not_one_per_call(make_mock, shared_gateways, redis_server):
    mock = make_mock("m")
    gw = shared_gateways([upstream_entry(mock)], tenants=LIMITED)
    assert post(gw).status_code == 200
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        for _ in range(5):
            assert post(gw).status_code == 200
        elapsed = time.monotonic() - started
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    assert elapsed < 10, f"5 requests took {elapsed:.1f} s"  # before: four 2 s timeouts each
    wait_until(lambda: requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY})
             .json().get("today", {}).get("requests") == 6, timeout=12)


def test_lease_of_a_request_that_ended_during_a_freeze_is_released(make_mock, shared_gateways,
                                                                   redis_server):
    mock = make_mock("m")
    mock.handler = lambda req: MockResponse(delay_s=1.0, body=json.dumps(
        {"type": "message", "usage": {"input_tokens": 1, "output_tokens": 1}}).encode())
    gw = shared_gateways([upstream_entry(mock)], tenants=LIMITED)
    slow = gevent.spawn(post, gw)
    gevent.sleep(0.3)  # its lease is taken
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        slow.join(10)
        assert slow.value.status_code == 200
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    mock.handler = None
    codes = []
    wait_until(lambda: codes.append(post(gw).status_code) or codes[-1] == 200, timeout=12)
    wait_until(lambda: gw.gateway.shared._unreleased == {}, timeout=12)  # the upkeep retried it


def test_twenty_streams_through_two_instances_do_not_overshoot_one_limit(make_mock,
                                                                          shared_gateways):
    """Issue 15's experiment across instances: spend held by running requests is counted in
    Redis, so two gateways together stay within the limit plus about one request."""
    from tests.mock_upstream import message, message_events
    limit, one = 0.05, (1000 * 3 + 600 * 15) / 1e6  # $0.012 a stream at Sonnet's prices
    mock = make_mock("m")
    events = message_events(message(ASK["model"], [{"type": "text", "text": "x" * 64}],
                                    input_tokens=1000, output_tokens=600))
    mock.handler = lambda req: mock.stream(events, delay_s=0.05)
    tenants = [{"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": limit}}}]
    gws = [shared_gateways([upstream_entry(mock)], tenants=tenants) for _ in range(2)]
    ask = {**ASK, "max_tokens": 600, "stream": True,
           "messages": [{"role": "user", "content": "word " * 800}]}
    results = gevent.pool.Pool(20).map(
        lambda i: post(gws[i % 2], **{k: v for k, v in ask.items() if k != "model"}).status_code,
        range(20))
    served = results.count(200)
    assert 0 < served < 20 and set(results) <= {200, 429}
    usage = lambda: requests.get(gws[0].url + "/usage", headers={"x-api-key": TENANT_KEY}).json()
    wait_until(lambda: usage()["today"]["requests"] == served)
    spent = usage()["today"]["costUSD"]
    print(f"20 parallel streams over 2 instances: {served} served, ${spent:.4f} recorded")
    assert spent <= limit + one, f"{served} served, ${spent:.4f} spent"


def test_reservations_of_a_crashed_instance_lapse(redis_server):
    from ccgate.shared.redis_state import LEASE_TTL_S, RedisState
    crashed, alive = RedisState(redis_server.url, "r:"), RedisState(redis_server.url, "r:")
    try:
        now = time.time()
        lease, refused = crashed.reserve("alice", 1.0, lambda: 1.5, now)
        assert lease and refused is None
        assert alive.reserve("alice", 0.1, lambda: 1.0, now) == (None, pytest.approx(1.0))
        crashed._upkeep.stop()  # it dies holding the lease: nobody renews or releases it
        lease, refused = alive.reserve("alice", 0.1, lambda: 1.0, now + LEASE_TTL_S + 1)
        assert lease and refused is None
        alive.unreserve("alice", lease, 0.0, now)
        assert alive.redis.exists("r:reserved:alice", "r:reserve:alice") == 0
    finally:
        crashed.close()
        alive.close()


def test_a_release_holds_its_real_cost_for_admissions_that_read_spend_before_it(redis_server):
    """The race spend_rule closes: an admission read the epoch and the recorded spend, then
    another instance recorded a cost and released its lease, then the admission reserves."""
    from ccgate.shared.redis_state import RedisState
    a, b = RedisState(redis_server.url, "e:"), RedisState(redis_server.url, "e:")
    try:
        now = time.time()
        running, _ = b.reserve("alice", 0.5, lambda: 1.0, now)

        def spend_read_before_b_releases() -> float:
            b.unreserve("alice", running, 1.0, now)  # b records $1 and releases meanwhile
            return 1.0  # what a read before b's record saw: $0 spent

        assert a.reserve("alice", 0.1, spend_read_before_b_releases, now) == (
            None, pytest.approx(1.0))  # b's real cost still counts
        assert a.reserve("alice", 0.1, lambda: 0.5, now)[0]  # read after: counted once
    finally:
        a.close()
        b.close()


def test_health_warns_when_redis_keeps_nothing_across_a_restart(make_mock, shared_gateways):
    gw = shared_gateways([upstream_entry(make_mock("m"))])
    storage = requests.get(gw.url + "/health").json()["storage"]
    assert "appendonly yes" in storage["warning"] and storage["ok"] is True


def test_spool_replay_keeps_records_with_line_separators(tmp_path, redis_server):
    from ccgate.usage.store_redis import RedisStore
    (tmp_path / "spool").mkdir(mode=0o700)
    store = RedisStore(redis_server.url, "s:", tmp_path / "spool")
    try:
        odd = [rec(f"u{i}", tenant="alice") | {"userAgent": f"agent\u2028{i}\u2029x",
                                                "sessionId": "\u0085"} for i in range(3)]
        (tmp_path / "spool" / "redis-usage-1.jsonl").write_text("".join(
            json.dumps({"day": "2026-11-26", "record": r}, ensure_ascii=False) + "\n" for r in odd),
            encoding="utf-8")
        assert store.replay() == 3
        got = store.records("alice", date(2026, 11, 26))
        assert [r["userAgent"] for r in got] == [r["userAgent"] for r in odd]
    finally:
        store.close()


def test_provisional_records_are_replaced_and_counted_once(store):
    day = date(2026, 11, 26)
    store.append(rec("long", cost=0.1) | {"provisional": 1}, day)
    assert store.day_totals("t", day).costUSD == pytest.approx(0.1)  # what a crash would leave
    store.append(rec("long", cost=0.3) | {"provisional": 2}, day)
    store.append(rec("other", cost=1.0), day)
    t = store.day_totals("t", day)
    assert (t.requests, t.costUSD, t.inputTokens) == (2, pytest.approx(1.3), 20)
    store.append(rec("long", cost=0.5), day)
    t = store.day_totals("t", day)
    assert (t.requests, t.costUSD) == (2, pytest.approx(1.5))
    assert t.by_model["claude-sonnet-4"].requests == 2
    assert store.month_cost("t", day) == pytest.approx(1.5)
    assert [r["requestId"] for r in store.records("t", day)] == ["other", "long"]
    assert sorted(r["requestId"] for r in store.recent(day, 10)) == ["long", "other"]


def test_weekly_limit_counts_this_calendar_week_only(store):
    from datetime import datetime, timezone
    from ccgate.config.settings import TenantLimits
    from ccgate.usage.limits import LimitExceeded, Limiter
    limiter = Limiter(store, "UTC")
    wednesday = datetime(2026, 11, 25, 12, tzinfo=timezone.utc).timestamp()
    store.append(rec("sun", cost=5.0, ts="2026-11-22T10:00:00.000Z"), date(2026, 11, 22))
    store.append(rec("mon", cost=1.0, ts="2026-11-23T10:00:00.000Z"), date(2026, 11, 23))
    limits = TenantLimits(weekly_usd=2.0)
    limiter.release(limiter.admit("t", limits, wednesday))  # last Sunday's $5 does not count
    store.append(rec("tue", cost=1.5, ts="2026-11-24T10:00:00.000Z"), date(2026, 11, 24))
    with pytest.raises(LimitExceeded) as e:
        limiter.admit("t", limits, wednesday)
    assert e.value.limit == "weekly" and "resets at 2026-11-30T00:00:00+00:00" in e.value.message
    assert limiter.limits_view("t", limits, wednesday)["weekly"]["usedUSD"] == pytest.approx(2.5)


def test_five_hour_window_slides(store):
    from datetime import datetime, timezone
    from ccgate.config.settings import TenantLimits
    from ccgate.usage.limits import LimitExceeded, Limiter
    limiter = Limiter(store, "UTC")
    noon = datetime(2026, 11, 26, 12, tzinfo=timezone.utc).timestamp()
    day = date(2026, 11, 26)
    store.append(rec("six-hours-ago", cost=5.0, ts="2026-11-26T06:00:00.000Z"), day)
    store.append(rec("two-hours-ago", cost=1.0, ts="2026-11-26T10:00:00.000Z"), day)
    limits = TenantLimits(window5h_usd=2.0)
    limiter.release(limiter.admit("t", limits, noon))  # $1 in the window: the $5 aged out
    store.append(rec("one-hour-ago", cost=1.5, ts="2026-11-26T11:00:00.000Z"), day)
    with pytest.raises(LimitExceeded) as e:
        limiter.admit("t", limits, noon)
    # The 10:00 spend ages out at 15:01, leaving $1.50 < $2.
    assert e.value.limit == "window5h" and e.value.retry_after_s == 3 * 3600 + 60
    view = limiter.limits_view("t", limits, noon)["window5h"]
    assert view["usedUSD"] == pytest.approx(2.5) and view["resetsAt"].startswith("2026-11-26T15:01")
    # Across midnight: yesterday 23:30 still counts at 02:00.
    store.append(rec("late", tenant="u", cost=3.0, ts="2026-11-26T23:30:00.000Z"), day)
    two_am = datetime(2026, 11, 27, 2, tzinfo=timezone.utc).timestamp()
    with pytest.raises(LimitExceeded):
        limiter.admit("u", limits, two_am)
