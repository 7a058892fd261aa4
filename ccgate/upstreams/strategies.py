"""Balancing strategies: each picks one upstream from the usable candidates it is given.

A candidate is anything with ``id``, ``index`` (its position in upstreams.json), ``weight`` and
``in_flight``. The pool decides which upstreams are candidates (usable, not yet tried, serving the
model; weight-0 backups only when no weighted upstream is left) and calls ``pick``; strategies only
order. A weight of 0 counts as 1 inside the backup set, where every candidate has weight 0.
"""
from __future__ import annotations

import random
from typing import Protocol, Sequence


class Candidate(Protocol):
    id: str
    index: int
    weight: int
    in_flight: int


def _weight(c: Candidate) -> int:
    return c.weight or 1


class RoundRobin:
    """Strict rotation in config order; the next pick is the first candidate after the last one."""

    def __init__(self) -> None:
        self._last = -1

    def pick(self, candidates: Sequence[Candidate]) -> Candidate:
        chosen = next((c for c in candidates if c.index > self._last), candidates[0])
        self._last = chosen.index
        return chosen


class SmoothWeightedRoundRobin:
    """nginx's smooth weighted round robin: weights 5/1/1 give ``a a b a c a a``.

    Each pick adds every candidate's weight to its running score, picks the highest score and
    subtracts the total from it. An upstream left out of some picks (cooling down, tried already,
    not serving that model) keeps its score frozen meanwhile, as nginx does, and resumes its share
    when it is a candidate again.
    """

    def __init__(self) -> None:
        self._current: dict[str, int] = {}

    def pick(self, candidates: Sequence[Candidate]) -> Candidate:
        total = 0
        best = None
        best_score = 0
        for c in candidates:
            w = _weight(c)
            score = self._current.get(c.id, 0) + w
            self._current[c.id] = score
            total += w
            if best is None or score > best_score:
                best, best_score = c, score
        self._current[best.id] -= total
        return best


class WeightedRandom:
    """Each candidate with probability weight / total weight."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def pick(self, candidates: Sequence[Candidate]) -> Candidate:
        return self._rng.choices(candidates, weights=[_weight(c) for c in candidates])[0]


class LeastConnections:
    """Fewest in-flight requests; ties go to the higher weight, then rotate in config order."""

    def __init__(self) -> None:
        self._rotation = RoundRobin()

    def pick(self, candidates: Sequence[Candidate]) -> Candidate:
        fewest = min(c.in_flight for c in candidates)
        tied = [c for c in candidates if c.in_flight == fewest]
        heaviest = max(_weight(c) for c in tied)
        return self._rotation.pick([c for c in tied if _weight(c) == heaviest])


STRATEGIES = {
    "round_robin": RoundRobin,
    "weighted_round_robin": SmoothWeightedRoundRobin,
    "random": WeightedRandom,
    "least_connections": LeastConnections,
}


def make_strategy(name: str):
    """A new strategy instance by its ``loadBalancer.strategy`` name."""
    return STRATEGIES[name]()
