"""SSE parser: recorded Anthropic streams give the same events whole and split at every byte."""

import pytest

from ccgate.sse import Event, SSEParser
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
