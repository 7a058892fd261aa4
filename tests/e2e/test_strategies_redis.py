"""The balancing strategies as several instances run them (Redis Lua) against the Python ones:
the same candidates, leaving and rejoining, must give the same choices."""
import random
from collections import Counter

import pytest

from ccgate.shared.redis_state import RedisState
from ccgate.upstreams.strategies import (LeastConnections, RoundRobin, SmoothWeightedRoundRobin,
                                         WeightedRandom)
from tests.e2e.servers import REDIS, RedisServer
from tests.unit.test_strategies import C, seq

pytestmark = pytest.mark.skipif(not REDIS, reason="!!! REDIS TESTS SKIPPED: no redis-server !!!")


class RedisStrategy:
    """A strategy object whose choices are made by the shared state's PICK script."""

    def __init__(self, state: RedisState, name: str):
        self.state, self.name = state, name

    def pick(self, candidates):
        if self.name == "least_connections":  # the shared counts stand for the held streams
            self.state.redis.hset(f"{self.state.prefix}lc",
                                  mapping={c.id: c.in_flight for c in candidates})
        chosen = self.state.pick(self.name, candidates, None, 3600)
        return next(c for c in candidates if c.id == chosen)


@pytest.fixture
def state(tmp_path):
    server = RedisServer(tmp_path).start()
    shared = RedisState(server.url, "st:")
    yield shared
    shared.close()
    server.stop()


@pytest.mark.parametrize("name,local", [("round_robin", RoundRobin),
                                        ("weighted_round_robin", SmoothWeightedRoundRobin)])
def test_rotations_match(state, name, local):
    a, b, c = C("a", 0, 5), C("b", 1, 1), C("c", 2, 1)
    ours, theirs = local(), RedisStrategy(state, name)
    for candidates, n in (([a, b, c], 14), ([a, c], 6), ([a, b, c], 21)):  # b leaves, rejoins
        assert seq(theirs, candidates, n) == seq(ours, candidates, n)


def test_least_connections_matches(state):
    a, b, c = C("a", 0, 1), C("b", 1, 2), C("c", 2, 1)
    ours, theirs = LeastConnections(), RedisStrategy(state, "least_connections")
    for loads in ((2, 1, 0), (2, 1, 1), (1, 1, 1), (0, 3, 0)):
        a.in_flight, b.in_flight, c.in_flight = loads
        assert seq(theirs, [a, b, c], 4) == seq(ours, [a, b, c], 4)


def test_weighted_random_shares_match(state):
    a, b = C("a", 0, 3), C("b", 1, 1)
    ours = Counter(seq(WeightedRandom(random.Random(7)), [a, b], 2000))
    theirs = Counter(seq(RedisStrategy(state, "random"), [a, b], 2000))
    assert abs(ours["a"] - theirs["a"]) < 120  # both about 3:1


def test_priority_tiers_in_the_shared_pick(state):
    a, b, c = C("a", 0, 1), C("b", 1, 1), C("official", 2, 1, priority=1)
    assert {state.pick("round_robin", [a, b, c], None, 3600) for _ in range(6)} == {"a", "b"}
    state.cooldown("a", 60, "HTTP 529")
    state.cooldown("b", 60, "HTTP 529")
    assert state.pick("round_robin", [a, b, c], "s1", 3600) == "official"
    state.recovered("a")
    state.recovered("b")
    assert state.pick("round_robin", [a, b, c], None, 3600) in ("a", "b")
    # Pinned on the worse tier: kept, but not renewed (a renewal here would set a 1 ms ttl).
    assert state.pick("round_robin", [a, b, c], "s1", 1) == "official"
    pin = f"{state.prefix}pin:s1"
    assert state.redis.pttl(pin) > 1000
    state.redis.pexpire(pin, 1)  # the pin expires
    import time
    time.sleep(0.01)
    assert state.pick("round_robin", [a, b, c], "s1", 3600) in ("a", "b")
