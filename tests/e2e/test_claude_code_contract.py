"""Issue 33, part 2: Claude Code's LLM-gateway contract (code.claude.com/docs/en/llm-gateway),
one test per point, against a real gateway and mock upstream."""
import json
import time

import pytest
import requests

from tests.helpers import TENANT_KEY, UPSTREAM_KEY, upstream_entry
from tests.mock_upstream import MockResponse

MODEL = "claude-sonnet-4-5-20250929"
ASK = {"model": MODEL, "max_tokens": 32000,
       "messages": [{"role": "user", "content": "hi"}]}


def post(gw, headers=None, body=None, path="/anthropic/v1/messages"):
    return requests.post(gw.url + path, headers={"x-api-key": TENANT_KEY, **(headers or {})},
                         data=json.dumps(body or ASK))


def test_anthropic_beta_and_version_are_forwarded_verbatim(gw, upstream):
    beta = "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
    assert post(gw, {"anthropic-beta": beta, "anthropic-version": "2023-06-01"}).status_code == 200
    sent = upstream.requests[-1].headers
    assert sent["anthropic-beta"] == beta and sent["anthropic-version"] == "2023-06-01"
    assert post(gw).status_code == 200  # none sent: none injected
    assert "anthropic-beta" not in upstream.requests[-1].headers


def test_beta_true_query_is_matched_on_the_path_and_forwarded(gw, upstream):
    r = post(gw, path="/anthropic/v1/messages?beta=true")
    assert r.status_code == 200 and r.json()["type"] == "message"
    assert upstream.requests[-1].path.endswith("/v1/messages")
    assert upstream.requests[-1].query == "beta=true"
    r = post(gw, path="/anthropic/v1/messages/count_tokens?beta=true")
    assert r.status_code == 200 and r.json() == {"input_tokens": 42}


@pytest.mark.parametrize("path", ["/", "/anthropic", "/anthropic/"])
def test_head_probes_are_answered_without_a_key(gw, upstream, path):
    r = requests.head(gw.url + path, allow_redirects=False)
    assert r.status_code == 200
    assert upstream.requests == []


def test_upstream_error_bodies_reach_claude_code_as_they_are(gw, upstream):
    body = {"type": "error", "error": {"type": "invalid_request_error", "message":
            "prompt is too long: 215000 tokens > 200000 maximum"}, "request_id": "req_011"}
    upstream.handler = lambda req: MockResponse(400, body=json.dumps(body).encode())
    r = post(gw)
    assert r.status_code == 400 and r.json() == body  # Claude Code matches on the wording


def test_a_secret_in_an_upstream_error_is_redacted_and_nothing_else_changes(gw, upstream):
    body = {"type": "error", "error": {"type": "authentication_error",
                                       "message": f"invalid x-api-key {UPSTREAM_KEY}"}}
    upstream.handler = lambda req: MockResponse(400, body=json.dumps(body).encode())
    r = post(gw)
    assert UPSTREAM_KEY not in r.text and r.json()["error"]["message"].startswith("invalid x-api-key ")


def test_system_blocks_are_never_reordered_or_merged(gw, upstream):
    system = [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
              {"type": "text", "text": "Second block."},
              {"type": "text", "text": "Third, cached 1h", "cache_control": {"type": "ephemeral",
                                                                            "ttl": "1h"}}]
    raw = json.dumps({**ASK, "system": system}, separators=(",", ":"))
    requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, data=raw)
    assert upstream.requests[-1].body == raw.encode()  # byte for byte


def test_the_session_header_keeps_a_conversation_on_one_upstream(make_gateway, make_mock):
    a, b = make_mock("a"), make_mock("b")
    gw = make_gateway([upstream_entry(a), upstream_entry(b)],
                      load_balancer={"strategy": "round_robin", "stickySessions": True})
    for session in ("s-1", "s-2", "s-3"):
        served = {post(gw, {"x-claude-code-session-id": session}).json()["content"][0]["text"]
                  for _ in range(4)}
        assert len(served) == 1, f"session {session} moved between upstreams: {served}"


@pytest.mark.parametrize("headers", [
    {"authorization": f"Bearer {TENANT_KEY}"},
    {"x-api-key": TENANT_KEY},
    {"x-api-key": TENANT_KEY, "authorization": f"Bearer {TENANT_KEY}"},  # apiKeyHelper sends both
])
def test_the_key_in_either_header_or_both(gw, upstream, headers):
    r = requests.post(gw.url + "/anthropic/v1/messages", headers=headers, json=ASK)
    assert r.status_code == 200
    assert TENANT_KEY not in json.dumps(dict(upstream.requests[-1].headers))


def test_model_discovery_is_fast_never_a_redirect_and_filtered(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "t", "key": TENANT_KEY, "allowedModels": ["*sonnet*"]}])
    many = [{"type": "model", "id": f"claude-{f}-{i}", "display_name": f"{f} {i}",
             "created_at": "2026-01-01T00:00:00Z"} for f in ("sonnet", "opus") for i in range(500)]
    upstream.handler = lambda req: MockResponse(body=json.dumps(
        {"data": many, "has_more": False, "first_id": many[0]["id"], "last_id": many[-1]["id"]}
    ).encode())
    started = time.monotonic()
    r = requests.get(gw.url + "/anthropic/v1/models?limit=1000", allow_redirects=False,
                     headers={"x-api-key": TENANT_KEY})
    assert time.monotonic() - started < 3
    assert r.status_code == 200
    ids = [m["id"] for m in r.json()["data"]]
    assert len(ids) == 500 and all("sonnet" in i for i in ids)
    assert upstream.requests[-1].query == "limit=1000"
