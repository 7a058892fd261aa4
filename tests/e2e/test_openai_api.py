"""/openai/v1 end to end with the official openai SDK against a mock Anthropic upstream."""
import json
from pathlib import Path

import openai
import pytest
import requests

from tests.helpers import DISABLED_KEY, OTHER_KEY, TENANT_KEY, upstream_entry
from tests.mock_upstream import MockResponse, error_body

SERVER = {"openai": {"enabled": True, "models": {"gpt-4o": "claude-sonnet-4-20250514",
                                                 "gpt-4o-mini": "claude-3-5-haiku-20241022"},
                     "defaultModel": "claude-sonnet-4-20250514"}}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def ogw(make_gateway, upstream):
    return make_gateway([upstream_entry(upstream)], server=SERVER)


def client(gw, key=TENANT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/openai/v1", api_key=key, max_retries=0)


def test_create_non_streaming(ogw, upstream):
    c = client(ogw).chat.completions.create(model="gpt-4o", messages=[
        {"role": "system", "content": "Be brief."}, *HI], seed=1, frequency_penalty=0.5)
    assert c.choices[0].message.content == "Hello from primary!"
    assert c.choices[0].finish_reason == "stop"
    assert c.model == "gpt-4o" and c.id.startswith("chatcmpl-")
    assert c.usage.prompt_tokens == 25 and c.usage.completion_tokens == 12
    sent = upstream.requests[-1].json
    assert sent["model"] == "claude-sonnet-4-20250514" and sent["system"] == "Be brief."
    assert "seed" not in sent and "frequency_penalty" not in sent
    assert TENANT_KEY not in json.dumps(upstream.requests[-1].headers)


def test_create_streaming_with_usage(ogw):
    stream = client(ogw).chat.completions.create(model="gpt-4o", messages=HI, stream=True,
                                                 stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == \
        "Hello from primary!"
    assert len({ch.id for ch in chunks}) == 1
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 37


def test_stream_helper_with_tools_and_round_trip(ogw, upstream):
    c = client(ogw)
    with c.chat.completions.stream(model="gpt-4o", messages=[
            {"role": "user", "content": "weather in Paris?"}], tools=TOOLS) as s:
        final = s.get_final_completion()
    msg = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert msg.content == "Let me check."
    call = msg.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}
    second = c.chat.completions.create(model="gpt-4o", tools=TOOLS, messages=[
        {"role": "user", "content": "weather in Paris?"},
        msg.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "20°C and sunny"}])
    assert second.choices[0].message.content == 'The tool said [{"type": "text", "text": "20°C and sunny"}]'
    sent = upstream.requests[-1].json["messages"]
    assert sent[1]["content"][-1] == {"type": "tool_use", "id": call.id, "name": "get_weather",
                                      "input": {"city": "Paris", "unit": "celsius"}}
    assert sent[2]["content"][0]["type"] == "tool_result"


def test_image_data_url(ogw, upstream):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    client(ogw).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}])
    block = upstream.requests[-1].json["messages"][0]["content"][1]
    assert block == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": png}}


def test_json_schema_response_format(ogw):
    c = client(ogw).chat.completions.create(model="gpt-4o", messages=HI, response_format={
        "type": "json_schema", "json_schema": {"name": "person", "schema": {
            "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}}})
    assert json.loads(c.choices[0].message.content) == {"name": "Ada", "age": 36}
    assert c.choices[0].finish_reason == "stop" and not c.choices[0].message.tool_calls


def test_models_list_and_retrieve(ogw):
    c = client(ogw)
    ids = [m.id for m in c.models.list()]
    assert ids[:2] == ["gpt-4o", "gpt-4o-mini"] and "claude-sonnet-4-20250514" in ids
    assert c.models.retrieve("gpt-4o").owned_by == "ccgate"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("gpt-nope")
    haiku_only = [m.id for m in client(ogw, OTHER_KEY).models.list()]
    assert "gpt-4o-mini" in haiku_only and "gpt-4o" not in haiku_only
    assert all("haiku" in m or m == "gpt-4o-mini" for m in haiku_only)


def test_errors_raise_the_matching_sdk_exceptions(ogw, upstream):
    with pytest.raises(openai.AuthenticationError) as e:
        client(ogw, "wrong-key-wrong").chat.completions.create(model="gpt-4o", messages=HI)
    assert e.value.body["type"] == "authentication_error"
    with pytest.raises(openai.PermissionDeniedError):
        client(ogw, DISABLED_KEY).chat.completions.create(model="gpt-4o", messages=HI)
    with pytest.raises(openai.PermissionDeniedError):
        client(ogw, OTHER_KEY).chat.completions.create(model="gpt-4o", messages=HI)
    with pytest.raises(openai.BadRequestError) as e:
        client(ogw).chat.completions.create(model="gpt-4o", messages=HI, n=2)
    assert e.value.body["param"] == "n"
    assert upstream.requests == []
    upstream.handler = lambda req: MockResponse(
        429, headers=[("content-type", "application/json"), ("retry-after", "3")],
        body=error_body("rate_limit_error", "Number of request tokens has exceeded your limit"))
    with pytest.raises(openai.RateLimitError) as e:
        client(ogw).chat.completions.create(model="gpt-4o", messages=HI, stream=True)
    assert e.value.response.headers["retry-after"] == "3"
    assert e.value.body["message"] == "Number of request tokens has exceeded your limit"


def test_unknown_model_without_default_is_model_not_found(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={"openai": {"models": {}}})
    with pytest.raises(openai.BadRequestError) as e:
        client(gw).chat.completions.create(model="gpt-9", messages=HI)
    assert e.value.code == "model_not_found"


def test_tenant_limit_is_openai_rate_limit_error(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server=SERVER, tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"rpm": 1}}])
    client(gw).chat.completions.create(model="gpt-4o", messages=HI)
    with pytest.raises(openai.RateLimitError) as e:
        client(gw).chat.completions.create(model="gpt-4o", messages=HI)
    assert e.value.body["type"] == "rate_limit_error" and int(e.value.response.headers["retry-after"]) > 0


def test_usage_is_recorded_as_openai(ogw):
    client(ogw).chat.completions.create(model="gpt-4o", messages=HI)
    files = list((Path(ogw.gateway.data_dir) / "usage" / "alice").glob("*/*.json"))
    record = json.loads(files[0].read_text().splitlines()[-1])
    assert record["api"] == "openai" and record["requestedModel"] == "gpt-4o"
    assert record["model"] == "claude-sonnet-4-20250514" and record["inputTokens"] == 25


def test_cors_preflight_and_origin(ogw):
    r = requests.options(ogw.url + "/openai/v1/chat/completions", headers={
        "Origin": "https://chat.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "authorization" in r.headers["access-control-allow-headers"]
    assert "POST" in r.headers["access-control-allow-methods"]
    r = requests.get(ogw.url + "/openai/v1/models", headers={"authorization": f"Bearer {TENANT_KEY}",
                                                             "Origin": "https://chat.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in r.headers["access-control-expose-headers"]
    r = requests.get(ogw.url + "/openai/v1/models", headers={"authorization": f"Bearer {TENANT_KEY}"})
    assert "access-control-allow-origin" not in r.headers  # not a browser: nothing to allow
    r = requests.options(ogw.url + "/anthropic/v1/messages", headers={"Origin": "https://x"})
    assert r.status_code == 204


def test_surface_can_be_turned_off(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={"openai": {"enabled": False}})
    r = requests.post(gw.url + "/openai/v1/chat/completions",
                      headers={"authorization": f"Bearer {TENANT_KEY}"}, json={"model": "x", "messages": HI})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_invalid_json_body(ogw):
    r = requests.post(ogw.url + "/openai/v1/chat/completions", data=b"{nope",
                      headers={"authorization": f"Bearer {TENANT_KEY}", "content-type": "application/json"})
    assert r.status_code == 400
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_upstream_error_mid_stream_becomes_error_chunk(ogw, upstream):
    from tests.mock_upstream import message, message_events, sse
    events = message_events(message("m", [{"type": "text", "text": "partial answer here"}]))
    upstream.handler = lambda req: upstream.stream(events[:4] + [sse("error", {
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})])
    r = requests.post(ogw.url + "/openai/v1/chat/completions", json={
        "model": "gpt-4o", "messages": HI, "stream": True},
        headers={"authorization": f"Bearer {TENANT_KEY}"})
    assert r.status_code == 200
    data = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
    assert json.loads(data[-1])["error"]["type"] == "overloaded_error"
    assert "[DONE]" not in data
    assert all(json.loads(d)["choices"][0]["finish_reason"] is None for d in data[:-1])


def _records(gw) -> list[dict]:
    return [json.loads(line) for f in (Path(gw.gateway.data_dir) / "usage").rglob("*.json")
            for line in f.read_text().splitlines()]


@pytest.mark.parametrize("cut_after", ["message_delta", "content_block_stop"])
def test_record_and_openai_client_agree_on_a_stream_cut_short(ogw, upstream, cut_after):
    """One rule for "complete" (issue 30): an upstream that drops the connection after the final
    message_delta delivered a whole message (the record is complete, the OpenAI client gets its
    finish_reason and [DONE]); one that drops it before did not (the record says interrupted,
    the client gets an error chunk and no [DONE])."""
    from tests.mock_upstream import message, message_events
    events = message_events(message("claude-sonnet-4-20250514", [{"type": "text", "text": "Hi!"}]))
    last = max(i for i, ev in enumerate(events) if ev.startswith(f"event: {cut_after}".encode()))
    upstream.handler = lambda req: upstream.stream(events[:last + 1])
    whole = cut_after == "message_delta"
    raw = requests.post(ogw.url + "/openai/v1/chat/completions",
                        headers={"authorization": f"Bearer {TENANT_KEY}"},
                        json={"model": "gpt-4o", "messages": HI, "stream": True,
                              "stream_options": {"include_usage": True}}).text
    assert raw.endswith("data: [DONE]\n\n") == whole
    assert ('"finish_reason":"stop"' in raw) == whole and ('"error"' in raw) != whole
    r = requests.post(ogw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={"model": "claude-sonnet-4-20250514", "max_tokens": 5, "stream": True,
                            "messages": HI})
    assert r.status_code == 200
    records = _records(ogw)
    assert [r.get("interrupted") for r in records] == ([None, None] if whole
                                                       else ["upstream", "upstream"])
    assert {r["api"] for r in records} == {"anthropic", "openai"}
