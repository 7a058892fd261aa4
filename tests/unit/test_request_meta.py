"""Duplicate top-level keys are refused on both parsing paths (fast and careful)."""
import json
import math

import pytest

from ccgate.api.anthropic import rewrite_model
from ccgate.core.json_object import parse_json_object, parse_spotting
from ccgate.resources.refs import may_name_objects


@pytest.mark.parametrize("body", [
    b'{"model": "haiku", "model": "opus"}',
    b'{"model": "haiku", "mo\\u0064el": "opus"}',  # the same key, escaped
    b'{"model": "haiku", "messages": [], "model" : "opus"}',
])
def test_a_key_given_twice_is_refused(body):
    with pytest.raises(ValueError, match="twice"):
        parse_json_object(body, unique_keys=True)


def test_a_key_quoted_inside_a_value_is_no_duplicate():
    doc = parse_json_object(b'{"model": "m", "messages": [{"content": "\\"model\\": x"}]}',
                            unique_keys=True)
    assert doc["model"] == "m"
    assert parse_json_object(b'{}', unique_keys=True) == {}


@pytest.mark.parametrize("body", [
    b'\xef\xbb\xbf{"model": "m"}',  # the fast path
    b'\xef\xbb\xbf{"model": "m", "x": "\\u00e9"}',  # the careful walk (an escape)
])
def test_a_leading_byte_order_mark_is_skipped_on_both_paths(body):
    assert parse_json_object(body, unique_keys=True)["model"] == "m"


def test_nan_which_orjson_refuses_is_read_as_json_reads_it():
    doc = parse_json_object(b'{"model": "m", "temperature": NaN}', unique_keys=True)
    assert doc["model"] == "m" and math.isnan(doc["temperature"])


def test_a_rewritten_body_keeps_every_number_exact():
    """orjson reads an integer past 64 bits as a float: a body the gateway re-encodes
    (modelRewrite) is made from json's own parse, so the upstream gets the number sent."""
    body = b'{"model": "a", "n": 123456789012345678901234567890, "f": 0.1}'
    doc = parse_json_object(body, unique_keys=True)

    class Tenant:
        def rewrite(self, model):
            return "b"

    model, _, out = rewrite_model(Tenant(), "a", doc, body)
    assert model == "b"
    assert json.loads(out) == {"model": "b", "n": 123456789012345678901234567890, "f": 0.1}


@pytest.mark.parametrize("escapes", [0, 3, 5000])
def test_an_escaped_duplicate_key_is_found_in_a_large_body(escapes):
    # Backslashes are first visited one by one, then (past a budget) one pattern pass reads on.
    system = "x" * 20000 + "\\n" * escapes
    body = ('{"model": "haiku", "system": "' + system + '", "mo\\u0064el": "opus"}').encode()
    with pytest.raises(ValueError, match="twice"):
        parse_json_object(body, unique_keys=True)


def test_an_escaped_backslash_before_u_is_text():
    body = ('{"model": "m", "system": "' + "x" * 20000 + '\\\\u0041"}').encode()
    assert parse_json_object(body, unique_keys=True)["system"].endswith("x\\u0041")


SPOT = ("file_id", "skill_id", "container")


@pytest.mark.parametrize("body, spotted", [
    (b'{"model": "m", "messages": []}', False),
    (b'{"model": "m", "messages": [{"content": [{"source": {"file_id": "f"}}]}]}', True),
    (b'{"model": "m", "container": "c"}', True),  # a top-level key is spotted too
    (b'{"model": "m", "system": "the \\"container\\" and \\"file_id\\" words"}', False),
    (b'{"model": "m", "system": "x\\u0041"}', None),  # an escape: the caller looks itself
])
def test_the_parse_spots_object_keys_in_its_own_pass(body, spotted):
    doc, found = parse_spotting(body, SPOT)
    assert doc == json.loads(body) and found is spotted


def test_spotting_agrees_with_the_resource_pre_filter_and_keeps_duplicates_refused():
    for body in [b'{"container": {"skills": [{"skill_id": "s"}]}, "model": "m"}',
                 b'{"model": "file_id", "x": ["skill_id"]}', b'{"a": {"b": {"c": "container"}}}']:
        assert parse_spotting(body, SPOT)[1] is may_name_objects(body)
    with pytest.raises(ValueError, match="twice"):
        parse_spotting(b'{"container": "a", "model": "m", "container": "b"}', SPOT)
