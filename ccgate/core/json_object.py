"""Request bodies as JSON objects, strictly: a duplicate key is refused (it could mean one model
to the allow-list and another to the upstream), fast (orjson) where that is provably safe."""
from __future__ import annotations

import codecs
import json
import re
from functools import lru_cache
from typing import Callable

import orjson

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def _object_with_unique_keys(text: str) -> dict:
    """A JSON object whose top-level keys must be unique: ``{"model": a, "model": b}`` would pass
    an allow-list check on one value while a mirror's parser uses the other.

    The top level is walked here and each value decoded by json's own C scanner, so this costs
    about what ``json.loads`` does (``object_pairs_hook`` would run Python for every object).
    """
    idx = _WS.match(text).end()
    if text[idx:idx + 1] != "{":
        return json.loads(text)  # not an object: json's own error, or the caller's type check
    out: dict = {}
    idx = _WS.match(text, idx + 1).end()
    closed = text[idx:idx + 1] == "}"
    while not closed:
        if text[idx:idx + 1] != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes",
                                       text, idx)
        key, idx = json.decoder.scanstring(text, idx + 1)
        idx = _WS.match(text, idx).end()
        if text[idx:idx + 1] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, idx)
        try:
            value, idx = _DECODER.scan_once(text, _WS.match(text, idx + 1).end())
        except StopIteration as e:
            raise json.JSONDecodeError("Expecting value", text, e.value) from None
        if key in out:
            raise ValueError(f"request body has the key {key!r} twice; send it once")
        out[key] = value
        idx = _WS.match(text, idx).end()
        closed = text[idx:idx + 1] == "}"
        if not closed and text[idx:idx + 1] != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, idx)
        if not closed:
            idx = _WS.match(text, idx + 1).end()
    idx += 1
    if _WS.match(text, idx).end() != len(text):
        raise json.JSONDecodeError("Extra data", text, idx)
    return out


_ESCAPE = re.compile(rb"\\u")


def has_unicode_escape(body: bytes) -> bool:
    """Whether ``\\u`` may occur (an escaped backslash before a ``u`` counts: the careful walk
    then decides).

    The regular expression reads every byte (~0.3 ns each); ``memchr`` skips to the next
    backslash at memory speed but costs ~0.15 µs a call. So backslashes are first visited one
    by one, one per 4 KB of body (at most a tenth of the expression's cost): a large body
    with few escapes is done without reading it all; one full of them (code) gets the pass.
    """
    i = body.find(b"\\")
    for _ in range(len(body) >> 12):
        if i < 0:
            return False
        if body[i + 1:i + 2] == b"u":
            return True
        i = body.find(b"\\", i + 2)  # past the escaped character, itself maybe a backslash
    return i >= 0 and _ESCAPE.search(body, i) is not None


@lru_cache(maxsize=256)
def _key_pattern(keys: tuple[str, ...], spot: tuple[str, ...]) -> re.Pattern:
    """A quoted top-level key in group 1, a quoted word of ``spot`` (not a key) in group 2."""
    others = tuple(k for k in spot if k not in keys)
    words = [b"|".join(re.escape(k.encode()) for k in group) or b"(?!)" for group in (keys, others)]
    return re.compile(b'"(?:(' + words[0] + b')|(' + words[1] + b'))"')


def _parsed_if_unique(body: bytes, spot: tuple[str, ...]) -> tuple[dict, bool] | None:
    """The body parsed, when that proves no top-level key is given twice: each key the parse
    found occurs once in the raw text, and there is no escape sequence (``"mo\\u0064el"`` would
    be a second ``model``); and whether a word of ``spot`` occurs quoted anywhere in it, found in
    the same pass. None otherwise: the careful walk then decides.

    orjson parses (about 2.5 times json's speed; anything it refuses, such as ``NaN``, a lone
    surrogate or deep nesting, goes to the walk, which answers as json does). One regular
    expression pass finds every key's occurrences. orjson reads an integer past 64 bits as a
    float: the gateway only reads ``model``, ``stream``, ``max_tokens`` and ``metadata`` from
    this document and re-encodes a body from json's own parse.
    """
    if has_unicode_escape(body):
        return None
    try:
        doc = orjson.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not doc:
        return None
    found = _key_pattern(tuple(doc), spot).findall(body)
    if sum(1 for key, _ in found if key) != len(doc):
        return None
    return doc, any(other for _, other in found) or any(k in doc for k in spot)


def parse_json_object(body: bytes, unique_keys: bool = False) -> dict:
    """The request body as a JSON object; ValueError with a client-readable message otherwise.

    ``unique_keys``: a top-level key given twice is refused too. A leading UTF-8 byte order
    mark is skipped, as ``json.loads`` skips it in bytes.
    """
    if unique_keys:
        return parse_spotting(body, ())[0]
    body = _without_bom(body)
    return _checked(lambda: json.loads(body))


def parse_spotting(body: bytes, spot: tuple[str, ...]) -> tuple[dict, bool | None]:
    """``parse_json_object(body, unique_keys=True)``, and whether any word of ``spot`` occurs in
    double quotes anywhere in the body, learnt in the parse's own pattern pass: True, False, or
    None when that pass did not apply (escapes, a key twice) and the caller must look itself."""
    body = _without_bom(body)
    fast = _parsed_if_unique(body, spot)
    if fast is not None:
        return fast
    return _checked(lambda: _object_with_unique_keys(body.decode("utf-8"))), None


def _without_bom(body: bytes) -> bytes:
    return body[len(codecs.BOM_UTF8):] if body.startswith(codecs.BOM_UTF8) else body


def _checked(parse: Callable[[], object]) -> dict:
    """``parse()``, a JSON object, or the ValueError a client can read."""
    try:
        doc = parse()
    except UnicodeDecodeError:
        raise ValueError("request body is not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"request body is not valid JSON: {e.msg} at line {e.lineno} "
                         f"column {e.colno}") from None
    except RecursionError:
        raise ValueError("request body is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ValueError("request body must be a JSON object")
    return doc


def with_model(body: bytes, model: str) -> bytes:
    """``body`` (a JSON object) with its top-level ``model`` replaced: the one way the gateway
    rewrites a body (``modelRewrite``, ``modelMap``). Re-encoded from the standard library's
    parse, exact for every number (orjson would round integers past 64 bits)."""
    return json.dumps({**json.loads(body), "model": model}, ensure_ascii=False).encode()
