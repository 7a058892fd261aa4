"""Keeping secrets out of what leaves the gateway: upstream keys and URLs, key-like strings.

Pure functions and a small stateful class; no I/O.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

REPLACEMENT = "[upstream]"
_SECRETISH = re.compile(r"(sk-[A-Za-z0-9_-]{2})[A-Za-z0-9_-]+|((?:Bearer|Basic)\s+)\S+", re.I)


def mask_secretish(text: str, limit: int = 200) -> str:
    """``text`` with anything key-like masked, cut to ``limit`` characters (for log lines)."""
    text = _SECRETISH.sub(lambda m: (m.group(1) or m.group(2)) + "…", text)
    return text if len(text) <= limit else text[:limit] + "…"


def cover(secret: str) -> str:
    """What stands in for ``secret``: ``[upstream]`` padded with ``*`` to the same length.

    The same length keeps a relayed body's ``Content-Length`` true.
    """
    if len(secret) < len(REPLACEMENT):
        return "*" * len(secret)
    return REPLACEMENT + "*" * (len(secret) - len(REPLACEMENT))


@lru_cache(maxsize=256)
def _covers(secrets: tuple[str, ...], as_bytes: bool) -> tuple[tuple, ...]:
    """Each secret with its stand-in, longest first (worked out once per upstream, not per
    request or header)."""
    pairs = [(s, cover(s)) for s in sorted({s for s in secrets if s}, key=len, reverse=True)]
    return tuple((s.encode(), c.encode()) if as_bytes else (s, c) for s, c in pairs)


@lru_cache(maxsize=256)
def _without_newline(covers: tuple[tuple, ...]) -> bool:
    return all(b"\n" not in secret for secret, _ in covers)


def replace_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret (longest first) covered."""
    for secret, stand_in in _covers(tuple(secrets), False):
        if secret in text:
            text = text.replace(secret, stand_in)
    return text


class StreamRedactor:
    """Replaces secrets in a byte stream, also when one is split across two chunks.

    Only the end of a chunk that could be the start of a secret is held back until the next chunk
    (or ``flush``). Events end in a blank line and JSON bodies in ``}``, which no secret starts
    with, so in practice nothing is delayed past the chunk it came in.
    """

    __slots__ = ("secrets", "held", "_no_newline")

    def __init__(self, secrets: Iterable[str]):
        self.secrets = _covers(tuple(secrets), True)
        self.held = b""
        # Data ending in a newline cannot end inside a secret without one (keys and URLs never
        # hold one): every SSE event's chunk skips the search for a secret's beginning.
        self._no_newline = _without_newline(self.secrets)

    def feed(self, chunk: bytes) -> bytes:
        data = self.held + chunk if self.held else chunk
        keep = 0
        whole = self._no_newline and data[-1:] == b"\n"
        for secret, stand_in in self.secrets:
            # partition, not ``in``: ``bytes in bytes`` first tries the needle as an integer,
            # raising and clearing a TypeError; ``find`` parses its arguments from a format
            # string. This runs for every event.
            if data.partition(secret)[1]:
                data = data.replace(secret, stand_in)
            if whole:
                continue
            # The longest tail of data that is a proper prefix of this secret.
            first = secret[:1]
            i = data.find(first, max(0, len(data) - len(secret) + 1))
            while i != -1:
                if secret.startswith(data[i:]):
                    keep = max(keep, len(data) - i)
                    break
                i = data.find(first, i + 1)
        if keep:
            self.held = data[-keep:]
            return data[:-keep]
        self.held = b""
        return data

    def flush(self) -> bytes:
        held, self.held = self.held, b""
        return held
