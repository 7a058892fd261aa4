from ccgate.core.wildcard import PatternSet


def test_star_is_the_only_wildcard_case_insensitive_whole_name():
    p = PatternSet(["*sonnet*", "claude-3-5-haiku-2024102?"])
    assert p.match("claude-sonnet-4-20250514")
    assert p.match("CLAUDE-SONNET-4")
    assert not p.match("claude-opus-4")
    assert not p.match("claude-3-5-haiku-20241022")  # "?" is a literal
    assert p.match("claude-3-5-haiku-2024102?")
    assert PatternSet(["claude-opus-4"]).match("claude-opus-4")
    assert not PatternSet(["claude-opus-4"]).match("claude-opus-4-1")  # whole name
    assert not PatternSet(["opus"]).match("claude-opus-4")
    assert PatternSet(["*"]).match("anything")
    assert not PatternSet([]).match("anything")
    assert PatternSet(["a.b*"]).match("a.bc") and not PatternSet(["a.b*"]).match("axbc")


def test_first_match_wins():
    p = PatternSet(["*sonnet-4*", "*sonnet*", "*"])
    assert p.first("claude-sonnet-4-5") == "*sonnet-4*"
    assert p.first("claude-3-7-sonnet") == "*sonnet*"
    assert PatternSet(["*opus*"]).first("haiku") is None
