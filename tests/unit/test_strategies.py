"""Balancing strategies and pool rules, without I/O (fake clock)."""
import random
from collections import Counter

import pytest

from ccgate.config.settings import UpstreamConfig
from ccgate.upstreams.health import probe_verdict
from ccgate.upstreams.pool import Pool
from ccgate.upstreams.strategies import (LeastConnections, RoundRobin, SmoothWeightedRoundRobin,
                                         WeightedRandom)


class C:
    def __init__(self, id, index, weight, in_flight=0, priority=0):
        self.id, self.index, self.weight, self.in_flight = id, index, weight, in_flight
        self.priority = priority

    def __repr__(self):
        return self.id


def seq(strategy, candidates, n):
    return "".join(strategy.pick(candidates).id for _ in range(n))


def test_smooth_wrr_nginx_sequence():
    a, b, c = C("a", 0, 5), C("b", 1, 1), C("c", 2, 1)
    assert seq(SmoothWeightedRoundRobin(), [a, b, c], 14) == "aabacaa" * 2


def test_smooth_wrr_leave_and_rejoin():
    a, b, c = C("a", 0, 5), C("b", 1, 1), C("c", 2, 1)
    s = SmoothWeightedRoundRobin()
    assert seq(s, [a, b, c], 3) == "aab"
    # b leaves: a and c share 5:1 meanwhile
    assert seq(s, [a, c], 6).count("c") == 1
    # b rejoins: over a full cycle every upstream gets exactly its share again
    after = seq(s, [a, b, c], 70)
    assert Counter(after) == {"a": 50, "b": 10, "c": 10}
    assert "bb" not in after and "cc" not in after


def test_round_robin_strict_rotation_and_changes():
    a, b, c = C("a", 0, 1), C("b", 1, 9), C("c", 2, 1)
    r = RoundRobin()
    assert seq(r, [a, b, c], 6) == "abcabc"
    assert seq(r, [a, c], 3) == "aca"
    assert seq(r, [a, b, c], 3) == "bca"  # the rotation goes on after the last pick (a)


def test_weighted_random_shares():
    a, b = C("a", 0, 3), C("b", 1, 1)
    counts = Counter(seq(WeightedRandom(random.Random(7)), [a, b], 4000))
    assert 0.72 < counts["a"] / 4000 < 0.78


def test_least_connections_with_held_streams():
    a, b, c = C("a", 0, 1), C("b", 1, 2), C("c", 2, 1)
    lc = LeastConnections()
    a.in_flight, b.in_flight, c.in_flight = 2, 1, 0
    assert lc.pick([a, b, c]).id == "c"
    c.in_flight = 1
    assert lc.pick([a, b, c]).id == "b"  # tie at 1: the higher weight wins
    b.weight = 1
    assert seq(lc, [a, b, c], 4) == "cbcb"  # equal ties rotate (b was last)


def up(uid, weight=1, **kw):
    return UpstreamConfig(id=uid, name=uid, url=f"http://{uid}", key="k", weight=weight,
                          enabled=kw.pop("enabled", True), auth="auto", read_timeout_s=600, **kw)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def picks(pool, n, **kw):
    out = []
    for _ in range(n):
        s = pool.pick(kw.get("model"), kw.get("session"))
        out.append(s.id)
        pool.succeeded(s, 1.0)
    return "".join(out)


def test_backup_used_only_when_weighted_unusable():
    clock = Clock()
    pool = Pool((up("a"), up("b"), up("z", weight=0)), "weighted_round_robin", clock=clock)
    assert "z" not in picks(pool, 10)
    for name in "ab":
        for _ in range(3):
            pool.failed(pool.by_id[name], "HTTP 500")
    assert picks(pool, 3) == "zzz"


def test_priority_tiers_fall_through_and_come_back():
    clock = Clock()
    pool = Pool((up("m1"), up("m2"), up("official", priority=1)), "round_robin", clock=clock,
                unhealthy_threshold=1)
    assert set(pool.pick(None).id for _ in range(6)) == {"m1", "m2"}  # tier 0 only
    pool.failed(pool.by_id["m1"], "HTTP 529")
    assert picks(pool, 3) == "m2m2m2"
    pool.by_id["m2"].budget_reason = "budget: prepaid balance of $20.00 used up"
    assert picks(pool, 2) == "officialofficial"  # the whole tier is unusable
    assert pool.pick(None, session="s1").id == "official"  # a session pinned on tier 1
    clock.t += 5  # m1's cooldown is over: tier 0 usable again
    pool.by_id["m2"].budget_reason = None
    assert pool.pick(None).id in ("m1", "m2")
    assert pool.pick(None, session="s1").id == "official"  # the pin holds, not renewed
    clock.t += 3600
    assert pool.pick(None, session="s1").id in ("m1", "m2")  # expired: back to tier 0


def test_out_of_budget_is_never_failed_open_into():
    pool = Pool((up("a"), up("b")), "round_robin", clock=Clock())
    for s in pool.states:
        s.budget_reason = "budget: daily limit of $5.00 reached"
    assert pool.pick(None) is None and pool.out_of_budget("claude-sonnet-5")
    pool.by_id["b"].budget_reason = None
    assert pool.pick(None).id == "b" and not pool.out_of_budget(None)


def test_cooldown_doubles_half_open_and_recovers():
    clock = Clock()
    pool = Pool((up("a"), up("b")), "round_robin", clock=clock, unhealthy_threshold=3)
    a = pool.by_id["a"]
    for _ in range(2):
        pool.failed(a, "HTTP 500")
    assert a.healthy(clock())  # below the threshold
    pool.failed(a, "HTTP 502")
    assert not a.healthy(clock()) and a.cooldown_until == clock() + 5
    assert picks(pool, 4) == "bbbb"
    clock.t += 5
    trial = pool.pick(None, exclude={"b"})
    assert trial is a and a.half_open
    assert pool.pick(None).id == "b"  # only one half-open trial at a time
    pool.failed(a, "HTTP 500")  # the trial fails: 10 s now
    assert a.cooldown_until == clock() + 10
    clock.t += 10
    assert pool.pick(None, exclude={"b"}) is a
    pool.succeeded(a, 1.0)
    assert a.cooldown_until == 0 and a.consecutive_failures == 0
    assert picks(pool, 4) in ("abab", "baba")


def test_cooldown_caps_at_five_minutes():
    clock = Clock()
    pool = Pool((up("a"),), "round_robin", clock=clock, unhealthy_threshold=1)
    a = pool.by_id["a"]
    for _ in range(12):
        pool.failed(a, "x")
        clock.t = a.cooldown_until
    assert a.next_cooldown_s == 300


def test_retry_after_cools_down_for_that_long():
    clock = Clock()
    pool = Pool((up("a"), up("b")), "round_robin", clock=clock)
    a = pool.by_id["a"]
    pool.failed(a, "HTTP 429", retry_after_s=30)
    assert a.cooldown_until == clock() + 30
    assert picks(pool, 2) == "bb"


def test_fail_open_when_everything_is_down():
    clock = Clock()
    pool = Pool((up("a"), up("b")), "round_robin", clock=clock, unhealthy_threshold=1)
    for s in pool.states:
        pool.failed(s, "down")
    pool.probe_result(pool.by_id["b"], False, "credentials rejected (HTTP 401)")
    assert pool.pick(None).id in "ab"


def test_models_filter_and_sticky_sessions():
    clock = Clock()
    pool = Pool((up("a", models=("*sonnet*",)), up("b"), up("c")), "round_robin", clock=clock)
    assert set(picks(pool, 6, model="claude-3-5-haiku")) == {"b", "c"}
    first = pool.pick("claude-sonnet-4", session="s1").id
    assert picks(pool, 20, model="claude-sonnet-4", session="s1") == first * 20
    # other traffic still rotates
    assert len(set(picks(pool, 6, model="claude-sonnet-4"))) == 3
    # the pinned upstream cools down: the session moves and stays on its new upstream
    for _ in range(3):
        pool.failed(pool.by_id[first], "HTTP 500")
    moved = pool.pick("claude-sonnet-4", session="s1").id
    assert moved != first
    assert picks(pool, 5, model="claude-sonnet-4", session="s1") == moved * 5
    # pins expire
    clock.t += 3601
    assert pool._pins["s1"][1] < clock()


def test_probe_verdicts():
    assert probe_verdict(200) == (True, None)
    assert probe_verdict(404) == (True, None)  # reachable, just no such path
    assert probe_verdict(401) == (False, "credentials rejected (HTTP 401)")
    assert probe_verdict(403)[0] is False
    assert probe_verdict(502) == (False, "probe answered HTTP 502")
    assert probe_verdict(None, "probe timed out") == (False, "probe timed out")


@pytest.mark.parametrize("uid", ["x"])
def test_snapshot_has_no_url_or_key(uid):
    pool = Pool((up(uid),), "round_robin")
    snap = pool.snapshot()[0]
    assert "url" not in snap and "key" not in snap and snap["id"] == uid
