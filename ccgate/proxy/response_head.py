"""Upstream answer heads parsed without the ``email`` package: the same ``HTTPMessage``, faster.

``http.client`` hands each answer's header lines to ``email.parser``, a general MIME parser
that cost about 45 µs of every proxied request (py-spy, 2026-12-06), more than any part of
the gateway's own work. Header lines that are plainly ``Name: value`` are set on the message
directly, exactly as that parser's ``compat32`` policy would set them; a head with anything
else (a folded line, a line without a colon, a name with odd characters) goes to the standard
parser whole, so every unusual answer gets the standard result, defects included.
"""
from __future__ import annotations

import email.parser
import http.client
import re

# A header line as the email feed parser takes one (its ``headerRE``), less its special cases
# (a continuation line, a "From " line), which take the standard route.
_PLAIN = re.compile(r"[\041-\071\073-\176]+:")
# Content types whose (here empty) body the standard parser reads as parts, noting defects.
_NESTED = ("multipart/", "message/")


def parse_head(lines: list[bytes], message_class=http.client.HTTPMessage) -> http.client.HTTPMessage:
    """The ``HTTPMessage`` of raw header lines, each ending in a line feed, then a blank one."""
    msg = message_class()
    for raw in lines:
        line = raw.decode("iso-8859-1").rstrip("\n")
        if line in ("\r", ""):
            break
        line = line[:-1] if line[-1] == "\r" else line
        if "\r" in line or not _PLAIN.match(line):
            return _standard(lines, message_class)
        name, value = line.split(":", 1)
        value = value.lstrip(" \t")
        if name.lower() == "content-type" and value.lower().startswith(_NESTED):
            return _standard(lines, message_class)
        msg.set_raw(name, value)
    msg.set_payload("")
    return msg


def _standard(lines: list[bytes], message_class) -> http.client.HTTPMessage:
    """What ``http.client.parse_headers`` has always returned."""
    text = b"".join(lines).decode("iso-8859-1")
    return email.parser.Parser(_class=message_class).parsestr(text)


def parse_headers(fp, _class=http.client.HTTPMessage) -> http.client.HTTPMessage:
    """A drop-in ``http.client.parse_headers``: its own line reader, with its length and count
    limits, then ``parse_head``."""
    return parse_head(http.client._read_headers(fp), _class)


def install() -> None:
    """Make ``http.client`` (under urllib3 and requests) parse answer heads with ``parse_head``;
    where this Python's ``http.client`` has no ``_read_headers``, the standard parser stays."""
    if hasattr(http.client, "_read_headers"):
        http.client.parse_headers = parse_headers
