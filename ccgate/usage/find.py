"""Finding one request's record in a day file without reading the day (the admin's request
detail, on a day of 200,000 records).

A request id starts with the second the request arrived (``new_request_id``), and a day file is
in append order, which is the order requests *ended*: a record ends at ``timestamp + duration``,
never before its request arrived. So a binary search over the file's byte offsets finds the
first line that ended at or after the id's second (less a little slack for clocks), and the
record is among the lines after it: those of requests that ended while this one ran. Reading
goes by blocks, and the caller yields between them, so no step holds the event loop.
"""
from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

BLOCK = 256 * 1024
SLACK_S = 5.0  # appends by other processes, clocks: a line may sit this much out of order


def id_second(request_id: str) -> int | None:
    """The second a request id says its request arrived (None for the old random ids)."""
    if len(request_id) != 16:
        return None
    try:
        return int(request_id[:8], 16)
    except ValueError:
        return None


def _ended(line: bytes) -> float | None:
    """When the request of a record line ended (its start plus its duration), or None."""
    try:
        doc = json.loads(line)
        start = datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00")).timestamp()
        return start + float(doc.get("duration") or 0) / 1000
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _line_at(fd: int, offset: int, size: int) -> tuple[int, bytes]:
    """The first whole line starting at or after ``offset``: (its offset, its bytes)."""
    if offset:
        block = os.pread(fd, BLOCK, offset - 1)
        start = block.find(b"\n")
        if start < 0:
            return size, b""
        offset += start
    end = os.pread(fd, BLOCK, offset)
    return offset, end.split(b"\n", 1)[0]


def start_offset(fd: int, size: int, since: float) -> int:
    """The offset of the first line whose request ended at or after ``since`` (binary search;
    a line that cannot be read counts as later, so nothing after it is skipped)."""
    low, high = 0, size
    while high - low > BLOCK:
        mid = (low + high) // 2
        at, line = _line_at(fd, mid, size)
        ended = _ended(line) if line else None
        if ended is not None and ended < since - SLACK_S and at < high:
            low = at
        else:
            high = mid
    return low


def scan(fd: int, size: int, offset: int, needle: bytes) -> Iterator[dict | None]:
    """From ``offset``, each record line holding ``needle``, block by block; None after each
    block without one (the caller's moment to yield)."""
    tail = b""
    while offset < size:
        block = tail + os.pread(fd, min(BLOCK, size - offset), offset)
        offset += len(block) - len(tail)
        cut = block.rfind(b"\n") + 1 if offset < size else len(block)
        whole, tail = block[:cut], block[cut:]
        at = whole.find(needle)
        while at >= 0:
            start = whole.rfind(b"\n", 0, at) + 1
            end = whole.find(b"\n", at)
            try:
                record = json.loads(whole[start:end if end >= 0 else len(whole)])
            except ValueError:
                record = None
            if isinstance(record, dict):
                yield record
            at = whole.find(needle, end if end >= 0 else len(whole))
        yield None


def find_in_file(path: Path, request_id: str, since: float | None,
                 pause: Callable[[], None]) -> dict | None:
    """The last record of ``request_id`` in a day file: from the first line that ended after
    ``since`` (when the id says when it arrived), else from the start; ``pause`` between blocks."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        size, found = os.fstat(fd).st_size, None
        offset = start_offset(fd, size, since) if since is not None else 0
        for record in scan(fd, size, offset, b'"requestId":"%s"' % request_id.encode()):
            if record is None:
                pause()
            elif record.get("requestId") == request_id:
                found = record
                if not record.get("provisional"):
                    break
        return found
    finally:
        os.close(fd)
