"""Chunked transfer coding undone without sockets: every payload byte given back the moment it
arrives, whatever the split; broken framing refused."""
import pytest

from ccgate.proxy.chunked import MAX_LINE, ChunkedError, Dechunker
from tests.helpers import FIXTURES

SSE_DIR = FIXTURES / "anthropic-sse"


def encode(pieces: list[bytes], size_line=lambda n: b"%x\r\n" % n, trailer=b"\r\n"):
    """The chunked coding of ``pieces``, and for each encoded byte whether it is payload."""
    out, payload_mask = b"", []
    for piece in pieces:
        head = size_line(len(piece))
        out += head + piece + b"\r\n"
        payload_mask += [False] * len(head) + [True] * len(piece) + [False, False]
    out += b"0\r\n" + trailer
    return out, payload_mask + [False] * (3 + len(trailer))


def events_of(path) -> list[bytes]:
    return [e + b"\n\n" for e in path.read_bytes().split(b"\n\n") if e]


@pytest.mark.parametrize("path", sorted(SSE_DIR.glob("*.sse")), ids=lambda p: p.name)
def test_a_recorded_stream_split_at_every_byte_comes_out_at_once(path):
    events = events_of(path)
    encoded, mask = encode(events)
    payload = b"".join(events)
    whole = Dechunker()
    assert whole.feed(encoded) == payload and whole.done and whole.extra == 0
    for cut in range(len(encoded) + 1):
        d = Dechunker()
        first = d.feed(encoded[:cut])
        # Nothing is held back: every payload byte that arrived is given back by this feed.
        assert first == payload[:sum(mask[:cut])]
        assert first + d.feed(encoded[cut:]) == payload and d.done


def test_byte_by_byte_with_extensions_and_trailers():
    events = events_of(SSE_DIR / "basic_response.sse")
    encoded, mask = encode(events, size_line=lambda n: b"%X ; name=\"v\"\r\n" % n,
                           trailer=b"x-checksum: 1\r\nx-other: 2\r\n\r\n")
    d, got = Dechunker(), []
    for i in range(len(encoded)):
        got.append(d.feed(encoded[i:i + 1]))
        assert d.done == (i == len(encoded) - 1)
        assert len(got[-1]) == mask[i]
    assert b"".join(got) == b"".join(events)


def test_bytes_after_the_last_chunk_are_counted():
    d = Dechunker()
    assert d.feed(b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1") == b"abc"
    assert d.done and d.extra == len(b"HTTP/1.1")


@pytest.mark.parametrize("bad", [b"zz\r\n", b"0x10\r\n", b"+10\r\n", b"1_0\r\n", b"-1\r\n", b"\r\n",
                                 b"; ext\r\n", b"1 0\r\n", b"11111111111111111\r\n"])
def test_a_size_line_that_is_not_hex_is_refused(bad):
    with pytest.raises(ChunkedError):
        Dechunker().feed(b"3\r\nabc\r\n" + bad + b"abc\r\n")


def test_chunk_data_must_end_with_crlf():
    d = Dechunker()
    assert d.feed(b"3\r\nabc\r") == b"abc"
    with pytest.raises(ChunkedError):
        d.feed(b"x")


def test_an_endless_size_line_is_refused():
    d = Dechunker()
    d.feed(b"1" + b"0" * (MAX_LINE // 2))
    with pytest.raises(ChunkedError):
        d.feed(b"0" * (MAX_LINE // 2 + 1))
