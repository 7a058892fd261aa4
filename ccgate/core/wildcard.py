"""Model-name patterns: ``*`` is the only wildcard, matching is case-insensitive and whole-name."""
from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern:
    """``*sonnet*`` -> a compiled regex matching the whole name, ignoring case."""
    return re.compile(".*".join(map(re.escape, pattern.split("*"))), re.IGNORECASE | re.DOTALL)


class PatternSet:
    """An ordered list of patterns; ``match`` answers whether a name fits any of them."""

    __slots__ = ("patterns", "_regexes", "_everything")

    def __init__(self, patterns: tuple[str, ...] | list[str]):
        self.patterns = tuple(patterns)
        self._regexes = tuple(compile_pattern(p) for p in self.patterns)
        self._everything = "*" in self.patterns

    def match(self, name: str) -> bool:
        return self._everything or any(r.fullmatch(name) for r in self._regexes)

    def first(self, name: str) -> str | None:
        """The first pattern that matches ``name``, or None."""
        for pattern, regex in zip(self.patterns, self._regexes):
            if regex.fullmatch(name):
                return pattern
        return None
