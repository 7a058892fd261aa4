"""Failed-attempt throttling per client address (admin logins, tenant keys)."""
from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Callable


class FailureThrottle:
    """After ``limit`` failures from one address within ``window_s``, block it for ``block_s``.

    A success never clears a block early: a guessed password must not unlock the guesser, and
    a failure while blocked extends the block, so a guesser that keeps going stays blocked.
    ``vouch`` remembers who succeeded from an address before any block (``vouched``): the
    caller may let those through a block (family members behind one NAT) while a guesser's
    right answer during a block looks like any other. Memory is bounded: addresses with
    nothing recent are dropped as they are seen; at most ``max_addresses`` vouched pairs.
    """

    def __init__(self, limit: int, window_s: float, block_s: float,
                 clock: Callable[[], float] = time.monotonic, max_addresses: int = 100_000):
        self.limit = limit
        self.window_s = window_s
        self.block_s = block_s
        self.clock = clock
        self.max_addresses = max_addresses
        self._failures: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._vouched: OrderedDict[tuple[str, str], None] = OrderedDict()

    def vouch(self, address: str, who: str) -> None:
        """``who`` succeeded from ``address`` while it was not blocked."""
        pair = (address, who)
        self._vouched[pair] = None
        self._vouched.move_to_end(pair)
        if len(self._vouched) > self.max_addresses:
            self._vouched.popitem(last=False)

    def vouched(self, address: str, who: str) -> bool:
        return (address, who) in self._vouched

    def blocked_for(self, address: str) -> float:
        """Seconds this address must still wait (0 when it may try)."""
        until = self._blocked_until.get(address)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._blocked_until[address]
            return 0.0
        return left

    def failed(self, address: str) -> None:
        now = self.clock()
        if address in self._blocked_until:
            self._blocked_until[address] = now + self.block_s
            return
        if len(self._failures) >= self.max_addresses:
            self._failures = {a: q for a, q in self._failures.items() if q and q[-1] > now - self.window_s}
        recent = self._failures.setdefault(address, deque())
        recent.append(now)
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        if len(recent) >= self.limit:
            self._blocked_until[address] = now + self.block_s
            recent.clear()
