"""The admission rule for spend limits, as one pure function every ledger applies.

A request of a tenant with a spend limit reserves its worst case (its body as input, all of its
``max_tokens`` as output) while it runs. It is admitted when

- nothing the tenant runs holds spend and what recently finished requests cost is still below
  the room left (``limit - recorded spend``): a request alone is always served, however large,
  so Claude Code's ``max_tokens: 32000`` never locks out a $1 tenant; or
- what running and recently finished requests hold, plus this request's worst case, fits the
  room.

So at any moment either everything running fits the room, or one request runs alone: the limit is
passed by at most the cost of one request.

A finished request's cost is written to the usage store before its reservation is released, but
another process may read the recorded spend just before that cost lands and reserve just after
the release. The file ledger reads the spend under its lock, which closes that window; Redis
counts releases per tenant (the *spend epoch*): an admission reads the epoch before the recorded
spend, and a release stamped with a later epoch still holds its real cost for that admission
(``recent``). Nothing is missed.
"""
from __future__ import annotations


def spend_refusal(running: float, recent: float, any_running: bool, amount: float,
                  room: float) -> float | None:
    """None to admit a request whose worst case is ``amount``; else what is held (for the
    message). ``running``: the worst cases of requests running; ``recent``: the real costs of
    requests finished within the ledger's ``recent_s``; ``room``: limit minus recorded spend."""
    held = running + recent
    if held >= room or (any_running and held + amount > room):
        return held
    return None
