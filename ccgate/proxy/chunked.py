"""HTTP/1.1 chunked transfer coding (RFC 9112 §7.1), undone as bytes arrive, without I/O.

The relay reads an upstream's chunked answer with this instead of one ``read_chunked`` step per
chunk: one read takes every byte already received, so SSE events that arrived together cost one
pass here and one write to the client, and an event that arrived alone still goes out at once.
"""
from __future__ import annotations

MAX_LINE = 8192  # a size or trailer line (a line split across reads is joined again per read)
_HEX = b"0123456789abcdefABCDEF"
_SIZE, _DATA, _CRLF, _TRAILER = range(4)


class ChunkedError(ValueError):
    """The upstream broke the chunked framing: the rest of the answer cannot be trusted."""


class Dechunker:
    """``feed`` gives back the payload in the bytes given, however they were split.

    ``done`` once the last chunk and its trailer section are through; ``extra`` counts bytes
    that came after them (an upstream that breaks HTTP: its connection is not reused).
    """

    __slots__ = ("done", "extra", "_left", "_partial", "_state")

    def __init__(self) -> None:
        self.done = False
        self.extra = 0
        self._left = 0  # payload bytes still to come in the current chunk
        self._partial = b""  # a line or chunk-ending CRLF split across feeds
        self._state = _SIZE

    def feed(self, data: bytes) -> bytes:
        if self._partial:
            data, self._partial = self._partial + data, b""
        out: list[bytes] = []
        pos, end, state = 0, len(data), self._state
        while pos < end and not self.done:
            if state == _DATA:
                stop = pos + self._left
                if stop > end:
                    out.append(data[pos:] if pos else data)
                    self._left = stop - end
                    break
                out.append(data[pos:stop])
                pos, state = stop, _CRLF
            elif state == _CRLF:
                if end - pos < 2:
                    self._partial = data[pos:]
                    break
                if data[pos:pos + 2] != b"\r\n":
                    raise ChunkedError("a chunk's data did not end with CRLF")
                pos, state = pos + 2, _SIZE
            else:
                eol = data.find(b"\n", pos)
                if eol < 0:
                    if end - pos > MAX_LINE:
                        raise ChunkedError("a chunk size or trailer line is too long")
                    self._partial = data[pos:]
                    break
                line, pos = data[pos:eol], eol + 1
                if state == _TRAILER:
                    if line == b"" or line == b"\r":  # the empty line ends the answer
                        self.done, self.extra = True, end - pos
                else:
                    self._left = _chunk_size(line)
                    state = _DATA if self._left else _TRAILER
        self._state = state
        return out[0] if len(out) == 1 else b"".join(out)


def _chunk_size(line: bytes) -> int:
    """The size on a chunk's first line (hex, then optional ``;extensions``)."""
    size = line[:-1] if line.endswith(b"\r") else line
    # int() would also take '0x1f', '+1f', '1_f' and spaces: only hex digits are a size.
    if not size or len(size) > 16 or size.strip(_HEX):  # extensions, spaces or not a size
        size = size.split(b";", 1)[0].strip(b" \t")
        if not size or len(size) > 16 or size.strip(_HEX):
            raise ChunkedError(f"invalid chunk size line ({len(line)} bytes)")
    return int(size, 16)
