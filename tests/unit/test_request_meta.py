"""Duplicate top-level keys are refused on both parsing paths (fast and careful)."""
import pytest

from ccgate.request_meta import parse_json_object


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
