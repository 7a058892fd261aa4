"""Upstream answer heads: ``parse_head`` gives exactly what ``http.client``'s email-based parser
gives, for plain heads (its fast path) and for odd ones (handed to the standard parser)."""
import email.parser
import http.client
import io

from hypothesis import given, settings, strategies as st

from ccgate.proxy.response_head import install, parse_head, parse_headers


def standard(lines: list[bytes]) -> http.client.HTTPMessage:
    text = b"".join(lines).decode("iso-8859-1")
    return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)


def same(head: bytes) -> None:
    """Both parsers, given the lines ``http.client`` reads of ``head`` (up to its blank line)."""
    lines = http.client._read_headers(io.BytesIO(head))
    fast, slow = parse_head(lines), standard(lines)
    assert shape(fast) == shape(slow)
    assert fast.items() == slow.items()


def shape(msg) -> dict:
    """Everything a message holds, nested parts and defects compared by value."""
    out = {k: v for k, v in vars(msg).items() if k not in ("defects", "_payload")}
    payload = msg._payload
    out["_payload"] = [shape(m) for m in payload] if isinstance(payload, list) else payload
    out["defects"] = [type(d) for d in msg.defects]
    out["type"] = type(msg)
    return out


def test_a_real_upstream_head():
    head = (b"content-type: application/json\r\nContent-Length: 512\r\n"
            b"request-id: req_011CT\r\nanthropic-ratelimit-tokens-remaining: 79000\r\n"
            b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\nX-Spaces:   padded value  \r\n"
            b"X-Latin: caf\xe9\r\n\r\n")
    same(head)
    msg = parse_head(http.client._read_headers(io.BytesIO(head)))
    assert msg.get_all("set-cookie") == ["a=1", "b=2"]
    assert msg["x-spaces"] == "padded value  " and msg["x-latin"] == "café"


def test_odd_heads_get_the_standard_answer():
    for head in [b"X-Folded: a\r\n  continued\r\n\r\n", b"no colon here\r\nX: 1\r\n\r\n",
                 b"From someone\r\n\r\n", b"Bad Name: x\r\n\r\n", b": empty name\r\n\r\n",
                 b"X: lone\rcarriage\r\n\r\n", b"Content-Type: multipart/mixed\r\n\r\n",
                 b"content-type: Message/rfc822\r\n\r\n", b"X: bare lf\nY: 2\n\n",
                 b"X: no blank line at the end\r\n", b"X: cut"]:
        same(head)


LINE = st.one_of(
    st.tuples(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
              st.sampled_from([":", ": ", ":\t", " : ", ""]),
              st.text(st.characters(max_codepoint=255), max_size=20),
              st.sampled_from(["\r\n", "\n", "\r\r\n"])).map(lambda t: "".join(t)),
    st.sampled_from(["Content-Type: multipart/x\r\n", " folded\r\n", "\tfolded\r\n", "\r\n"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(LINE, max_size=8))
def test_any_head_parses_as_the_standard_parser_does(texts):
    head = "".join(texts).encode("iso-8859-1") + b"\r\n"
    same(head)


def test_install_replaces_http_clients_parser_once():
    install()
    install()
    assert http.client.parse_headers is parse_headers
    msg = http.client.parse_headers(io.BytesIO(b"A: 1\r\nB: 2\r\n\r\nbody"))
    assert msg.items() == [("A", "1"), ("B", "2")]


def test_the_line_limits_of_http_client_still_apply():
    try:
        parse_headers(io.BytesIO(b"X: " + b"a" * 70000 + b"\r\n\r\n"))
    except http.client.LineTooLong:
        pass
    else:
        raise AssertionError("a 70 KB header line was accepted")
