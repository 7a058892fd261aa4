"""SSE parser: recorded Anthropic streams give the same events whole and split at every byte."""

import pytest

from ccgate.core.sse import Event, SSEParser
from tests.helpers import FIXTURES

SSE_DIR = FIXTURES / "anthropic-sse"
SSE_FILES = sorted(SSE_DIR.glob("*.sse"))


def parse_all(chunks) -> list[Event]:
    parser = SSEParser()
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.flush()
    assert not parser.pending
    return events


@pytest.mark.parametrize("path", SSE_FILES, ids=lambda p: p.stem)
def test_fixture_split_at_every_byte(path):
    raw = path.read_bytes()
    whole = parse_all([raw])
    assert whole[0].event == "message_start" and whole[-1].event == "message_stop"
    for i in range(1, len(raw)):
        assert parse_all([raw[:i], raw[i:]]) == whole


@pytest.mark.parametrize("path", SSE_FILES, ids=lambda p: p.stem)
def test_fixture_byte_by_byte(path):
    raw = path.read_bytes()
    assert parse_all(raw[i:i + 1] for i in range(len(raw))) == parse_all([raw])


def test_crlf_cr_and_multibyte_utf8_split():
    text = "event: x\r\ndata: héllo 你好 👋\r\n\r\nevent: y\rdata: a\rdata: b\r\r: comment\n\n"
    raw = text.encode()
    expected = [Event("x", "héllo 你好 👋"), Event("y", "a\nb")]
    assert parse_all([raw]) == expected
    for i in range(1, len(raw)):
        assert parse_all([raw[:i], raw[i:]]) == expected


def test_unnamed_event_and_pending():
    parser = SSEParser()
    assert parser.feed(b"data: {}\n\ndata: {\"a\"") == [Event("message", "{}")]
    assert parser.pending


@pytest.mark.parametrize("raw", [
    b"event: \ndata: x\n\n",  # an empty name is "message"
    b"event:  spaced\ndata:  two spaces\n\n",
    b"event:a:b\ndata:{}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
    b"event: only-name\n\nevent: x\ndata: y\n\n",
    b"event: x\ndata: \xff\xfe\n\nevent: y\ndata: 1\ndata: 2\n\n",
    b"event: x\ndata: y\n\nevent: half\ndata: cut",
])
def test_whole_event_shortcut_reads_as_the_line_parser(raw):
    """A chunk fed whole (the one-regex path) gives what the line-by-line path gives for it
    byte by byte, also for shapes the shortcut leaves to the line path."""
    assert parse_all([raw]) == parse_all(raw[i:i + 1] for i in range(len(raw)))
