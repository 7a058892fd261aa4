"""Reading and checking an HTTP/1.1 request head strictly (RFC 9112), for ``server.Handler``.

gevent's own parser is lenient in ways that matter behind a front proxy that frames requests
differently (request smuggling): ``Transfer-Encoding`` together with ``Content-Length``, folded
header lines, bare CR or LF line ends, signed lengths, two ``Host`` headers. Each of those is a
``BadFraming`` here, whose text names the kind of problem and never the input.
"""
from __future__ import annotations

import re

MAX_HEADER_LINE = 16 * 1024
MAX_HEADERS = 100

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP/1\.([01])\r\n")
# A field value: visible ASCII, obs-text, spaces and tabs; no CR, LF, NUL or other controls.
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_DIGITS = re.compile(r"[0-9]{1,18}")
# A well-formed header line as a whole: token, colon, a value without controls, CRLF.
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*\r\n")


class BadFraming(ValueError):
    """A request head this server refuses (400, connection closed); the text names no input."""


def check_head_line(line: bytes) -> tuple[bytes, bytes]:
    """``(name, value)`` of one raw header line, or BadFraming."""
    if not line.endswith(b"\r\n") or b"\r" in line[:-2] or b"\n" in line[:-2]:
        raise BadFraming("header line not ended by CRLF, or a bare CR/LF inside it")
    if line[:1] in (b" ", b"\t"):
        raise BadFraming("folded header line (obs-fold)")
    name, sep, value = line[:-2].partition(b":")
    if not sep or not _TOKEN.fullmatch(name):
        raise BadFraming("malformed header name")
    value = value.strip(b" \t")
    if not _FIELD_VALUE.fullmatch(value):
        raise BadFraming("control character in a header value")
    return name, value


def check_framing(headers: list[tuple[bytes, bytes]]) -> None:
    """RFC 9112 §6.3: one unambiguous body length, or BadFraming."""
    te = [v for n, v in headers if n.lower() == b"transfer-encoding"]
    cl = [v for n, v in headers if n.lower() == b"content-length"]
    if te:
        if cl:
            raise BadFraming("both Transfer-Encoding and Content-Length")
        if len(te) > 1 or te[0].lower() != b"chunked":
            raise BadFraming("Transfer-Encoding other than a single 'chunked'")
    if cl:
        values = {v.strip() for item in cl for v in item.split(b",")}
        if len(values) != 1 or not _DIGITS.fullmatch(values.pop().decode("latin-1")):
            raise BadFraming("invalid or conflicting Content-Length")


class RequestHead:
    """A checked request head in the shape gevent's handler reads its ``headers`` (``get``,
    ``getheader``, ``typeheader``, ``headers``, ``status``), built from the lines the strict
    reader already split: gevent does not parse the head a second time."""

    status = ""  # gevent refuses a head whose parser left a status

    def __init__(self, lines: list[bytes], fields: list[tuple[bytes, bytes]]):
        self._lines = lines
        self._first: dict[str, str] = {}  # lower-case name -> its first value, as email.Message
        for name, value in fields:
            self._first.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name.lower(), default)

    getheader = get

    @property
    def typeheader(self) -> str | None:
        return self._first.get("content-type")

    @property
    def headers(self) -> list[str]:
        """Each header line as text, CRLF included (what gevent's environ builder splits)."""
        return [line.decode("latin-1") for line in self._lines]

    def __delitem__(self, name: str) -> None:
        # gevent deletes a Content-Length sent beside "Transfer-Encoding: chunked" and ignores
        # the KeyError when there is none; check_framing refuses that pair, so there never is.
        raise KeyError(name)


def check_host(headers: list[tuple[bytes, bytes]], http11: bool) -> None:
    """RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; HTTP/1.0 at most one."""
    hosts = sum(1 for n, _ in headers if n.lower() == b"host")
    if hosts > 1 or (http11 and hosts == 0):
        raise BadFraming("no Host header" if hosts == 0 else "more than one Host header")


def read_head(rfile, http11: bool = True) -> RequestHead:
    """The header lines of a request (up to and including the blank line), checked."""
    lines: list[bytes] = []
    headers: list[tuple[bytes, bytes]] = []
    while True:
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if not line:
            raise BadFraming("connection closed inside the request head")
        if len(line) > MAX_HEADER_LINE:
            raise BadFraming("header line too long")
        if line == b"\r\n":
            break
        ok = _HEADER_LINE.fullmatch(line)  # the usual case in one C call; else the exact reason
        headers.append(ok.group(1, 2) if ok else check_head_line(line))
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise BadFraming("too many header lines")
    check_framing(headers)
    check_host(headers, http11)
    return RequestHead(lines, headers)
