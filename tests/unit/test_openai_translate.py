"""OpenAI <-> Anthropic translation rules, one by one (pure functions)."""
import json

import pytest

from ccgate.openai.request import TranslationError, resolve_model, to_anthropic
from ccgate.openai.response import error_from_anthropic, to_chat_completion
from ccgate.openai.stream import StreamTranslator
from tests.mock_wire import message, message_events, sse
from tests.helpers import FIXTURES

M = "claude-sonnet-4-20250514"
SSE_DIR = FIXTURES / "anthropic-sse"


def tr(**body):
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return to_anthropic(body, M)


def text(t):
    return {"type": "text", "text": t}


# -- request ---------------------------------------------------------------------------------
def test_model_resolution():
    aliases = {"gpt-4o": "claude-sonnet-4-20250514"}
    assert resolve_model("gpt-4o", aliases, None) == "claude-sonnet-4-20250514"
    assert resolve_model("claude-3-5-haiku-20241022", aliases, None) == "claude-3-5-haiku-20241022"
    assert resolve_model("gpt-3.5", aliases, "claude-x") == "claude-x"
    with pytest.raises(TranslationError) as e:
        resolve_model("gpt-3.5", aliases, None)
    assert e.value.code == "model_not_found" and e.value.param == "model"


def test_minimal_request_exact_body():
    assert tr().body == {"model": M, "max_tokens": 4096,
                         "messages": [{"role": "user", "content": [text("hi")]}]}


def test_system_and_developer_messages_anywhere():
    t = tr(messages=[{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "hi"},
                     {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                     {"role": "system", "content": "  "}])
    assert t.body["system"] == "Be brief.\n\nUse French."
    assert [m["role"] for m in t.body["messages"]] == ["user"]
    assert "system" not in tr().body


def test_content_parts_images_and_no_empty_text():
    t = tr(messages=[{"role": "user", "content": [
        {"type": "text", "text": ""},
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}])
    assert t.body["messages"][0]["content"] == [
        text("what is this?"),
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]
    with pytest.raises(TranslationError) as e:
        tr(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]}])
    assert e.value.param == "messages[0].content[0].image_url.url"
    with pytest.raises(TranslationError):
        tr(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])


def test_tool_calls_and_grouped_tool_results():
    t = tr(messages=[
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "w", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "20C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "25C"}]},
        {"role": "user", "content": "thanks"},
        {"role": "user", "content": "and Oslo?"}])
    assert t.body["messages"] == [
        {"role": "user", "content": [text("weather in Paris and Rome?")]},
        {"role": "assistant", "content": [
            text("Checking."),
            {"type": "tool_use", "id": "call_1", "name": "w", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "w", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": [text("20C")]},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [text("25C")]},
            text("thanks"), text("and Oslo?")]}]


def test_invalid_tool_arguments_are_400():
    with pytest.raises(TranslationError) as e:
        tr(messages=[{"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "w", "arguments": "{oops"}}]}])
    assert e.value.param == "messages[0].tool_calls[0].function.arguments"


def test_assistant_only_tool_calls_content_none():
    t = tr(messages=[{"role": "user", "content": "x"},
                     {"role": "assistant", "content": None, "tool_calls": [
                         {"id": "c", "type": "function", "function": {"name": "w", "arguments": "{}"}}]}])
    assert t.body["messages"][1]["content"] == [{"type": "tool_use", "id": "c", "name": "w", "input": {}}]


def test_tools_and_tool_choice():
    tools = [{"type": "function", "function": {"name": "w", "description": "Weather",
                                               "parameters": {"type": "object", "properties": {"c": {"type": "string"}}}}},
             {"type": "function", "function": {"name": "now"}}]
    t = tr(tools=tools)
    assert t.body["tools"] == [
        {"name": "w", "description": "Weather", "input_schema": {"type": "object", "properties": {"c": {"type": "string"}}}},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}}]
    assert t.body["tool_choice"] == {"type": "auto"}
    assert tr(tools=tools, tool_choice="required").body["tool_choice"] == {"type": "any"}
    assert tr(tools=tools, tool_choice="none").body["tool_choice"] == {"type": "none"}
    assert tr(tools=tools, tool_choice={"type": "function", "function": {"name": "w"}}).body[
        "tool_choice"] == {"type": "tool", "name": "w"}
    assert tr(tools=tools, parallel_tool_calls=False).body["tool_choice"] == {
        "type": "auto", "disable_parallel_tool_use": True}


def test_sampling_and_limits():
    b = tr(max_completion_tokens=100, max_tokens=5, stop=["END", "  ", "\n"], temperature=1.7,
           top_p=0.9, user="u-1", seed=3, frequency_penalty=1, presence_penalty=1,
           logit_bias={"1": 2}, logprobs=True, top_logprobs=2, service_tier="auto", store=True).body
    assert b == {"model": M, "max_tokens": 100, "messages": b["messages"],
                 "stop_sequences": ["END"], "temperature": 1.0, "top_p": 0.9,
                 "metadata": {"user_id": "u-1"}}
    assert tr(max_tokens=50, stop="STOP", temperature=-1).body["stop_sequences"] == ["STOP"]
    assert tr(temperature=-1).body["temperature"] == 0.0
    assert to_anthropic({"messages": [{"role": "user", "content": "x"}]}, M, 1234).body["max_tokens"] == 1234


def test_reasoning_effort_enables_thinking():
    b = tr(reasoning_effort="medium", max_tokens=1000, temperature=0.5, top_p=0.5).body
    assert b["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert b["max_tokens"] == 5096 and "temperature" not in b and "top_p" not in b
    assert tr(reasoning_effort="high").body["thinking"]["budget_tokens"] == 16384
    assert tr(reasoning_effort="low", max_tokens=8000).body["max_tokens"] == 8000
    with pytest.raises(TranslationError):
        tr(reasoning_effort="extreme")


def test_response_format():
    t = tr(response_format={"type": "json_schema", "json_schema": {
        "name": "person info", "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}})
    assert t.json_tool == "person_info"
    assert t.body["tool_choice"] == {"type": "tool", "name": "person_info"}
    assert t.body["tools"][0]["input_schema"]["properties"] == {"name": {"type": "string"}}
    j = tr(response_format={"type": "json_object"}, messages=[
        {"role": "system", "content": "S"}, {"role": "user", "content": "x"}]).body
    assert j["system"].startswith("S\n\n") and "JSON" in j["system"]


def test_n_greater_than_one_is_rejected():
    with pytest.raises(TranslationError) as e:
        tr(n=2)
    assert e.value.param == "n"


def test_stream_options():
    assert tr(stream=True, stream_options={"include_usage": True}).include_usage
    assert not tr(stream=True).include_usage
    assert tr(stream=True).body["stream"] is True


@pytest.mark.parametrize("body,param", [
    ({"messages": []}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "code"}]}, "tools[0]"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
])
def test_bad_requests_name_the_parameter(body, param):
    with pytest.raises(TranslationError) as e:
        to_anthropic(body, M)
    assert e.value.param == param


# -- response --------------------------------------------------------------------------------
def test_response_text_tools_thinking_usage():
    msg = message(M, [{"type": "thinking", "thinking": "let me think", "signature": "s"},
                      text("Hello "), text("world"),
                      {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"c": "Paris"}},
                      {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}}],
                  input_tokens=10, output_tokens=20, cache_creation=5, cache_read=100,
                  stop_reason="tool_use", msg_id="msg_abc")
    out = to_chat_completion(msg, "gpt-4o", 1700000000)
    assert out == {
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o",
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Hello world", "refusal": None,
            "reasoning_content": "let me think",
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "w", "arguments": '{"c": "Paris"}'}},
                {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 115, "completion_tokens": 20, "total_tokens": 135,
                  "prompt_tokens_details": {"cached_tokens": 100}}}


@pytest.mark.parametrize("stop,finish", [("end_turn", "stop"), ("stop_sequence", "stop"),
                                         ("pause_turn", "stop"), ("max_tokens", "length"),
                                         ("model_context_window_exceeded", "length"),
                                         ("tool_use", "tool_calls"), ("refusal", "content_filter")])
def test_finish_reasons(stop, finish):
    msg = message(M, [text("x")], stop_reason=stop)
    assert to_chat_completion(msg, "m", 1)["choices"][0]["finish_reason"] == finish


def test_only_tools_gives_null_content_and_json_tool_gives_content():
    msg = message(M, [{"type": "tool_use", "id": "t", "name": "w", "input": {}}], stop_reason="tool_use")
    assert to_chat_completion(msg, "m", 1)["choices"][0]["message"]["content"] is None
    forced = message(M, [{"type": "tool_use", "id": "t", "name": "person", "input": {"name": "Ada"}}],
                     stop_reason="tool_use")
    choice = to_chat_completion(forced, "m", 1, json_tool="person")["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"name": "Ada"}
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]


def test_error_translation():
    body = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert error_from_anthropic(529, body.encode()) == {"error": {
        "message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}}
    assert error_from_anthropic(502, b"<html>")["error"]["message"] == "upstream answered HTTP 502"


# -- stream ----------------------------------------------------------------------------------
def chunks_of(out: bytes) -> list:
    events = [e for e in out.decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    return [e[6:] if e[6:] == "[DONE]" else json.loads(e[6:]) for e in events]


def run_stream(raw: bytes, split: int | None = None, **kw) -> list:
    t = StreamTranslator("gpt-4o", 1700000000, **kw)
    parts = [raw] if split is None else [raw[:split], raw[split:]]
    return chunks_of(b"".join(t.feed(p) for p in parts) + t.close())


def text_then_two_tools() -> bytes:
    msg = message(M, [text("Let me check both."),
                      {"type": "tool_use", "id": "toolu_a", "name": "w", "input": {"city": "Paris"}},
                      {"type": "tool_use", "id": "toolu_b", "name": "w", "input": {"city": "Rome"}}],
                  stop_reason="tool_use", msg_id="msg_s1", input_tokens=30, output_tokens=40,
                  cache_read=7)
    return b"".join(message_events(msg))


def test_stream_text_then_two_tool_calls():
    out = run_stream(text_then_two_tools(), include_usage=True)
    assert out[-1] == "[DONE]"
    usage_chunk, chunks = out[-2], out[:-2]
    assert {c["id"] for c in out[:-1]} == {"chatcmpl-s1"}
    assert {c["created"] for c in out[:-1]} == {1700000000} and {c["model"] for c in out[:-1]} == {"gpt-4o"}
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert all("role" not in d for d in deltas[1:])
    assert "".join(d.get("content", "") for d in deltas) == "Let me check both."
    calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
    starts = [tc for tc in calls if "id" in tc]
    assert starts == [
        {"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "w", "arguments": ""}},
        {"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "w", "arguments": ""}}]
    for i, city in ((0, "Paris"), (1, "Rome")):
        frags = [tc for tc in calls if tc["index"] == i and "id" not in tc]
        assert all(set(tc) == {"index", "function"} and set(tc["function"]) == {"arguments"} for tc in frags)
        assert json.loads("".join(tc["function"]["arguments"] for tc in frags)) == {"city": city}
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[:-1] == [None] * (len(chunks) - 1) and finishes[-1] == "tool_calls"
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == {
        "prompt_tokens": 37, "completion_tokens": 40, "total_tokens": 77,
        "prompt_tokens_details": {"cached_tokens": 7}}
    assert all(c["usage"] is None for c in chunks)


def test_stream_without_include_usage_has_no_usage_chunk():
    out = run_stream(text_then_two_tools())
    assert all(c["choices"] for c in out[:-1]) and all("usage" not in c for c in out[:-1])


@pytest.mark.parametrize("name", ["basic_response", "tool_use_response", "refusal_response",
                                  "incomplete_partial_json_response"])
def test_recorded_streams_split_at_every_byte(name):
    raw = (SSE_DIR / f"{name}.sse").read_bytes()
    whole = run_stream(raw)
    assert whole[-1] == "[DONE]"
    for i in range(1, len(raw), 7):
        assert run_stream(raw, i) == whole


def test_multibyte_utf8_split_inside_a_character():
    raw = b"".join(message_events(message(M, [text("héllo 你好 👋 ok")])))
    whole = run_stream(raw)
    text_out = "".join(c["choices"][0]["delta"].get("content", "") for c in whole[:-1])
    assert text_out == "héllo 你好 👋 ok"
    cut = raw.index("你".encode()) + 1
    assert run_stream(raw, cut) == whole


def test_thinking_deltas_become_reasoning_content():
    raw = (sse("message_start", {"type": "message_start", "message": {"id": "msg_t", "usage": {"input_tokens": 1}}})
           + sse("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "thinking", "thinking": ""}})
           + sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "thinking_delta", "thinking": "hmm"}})
           + sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "signature_delta", "signature": "x"}}))
    out = run_stream(raw)
    assert [c["choices"][0]["delta"] for c in out] == [{"role": "assistant", "content": ""},
                                                       {"reasoning_content": "hmm"}]


def test_error_event_mid_stream_ends_without_finish_or_done():
    msg = message(M, [text("partial answer")])
    events = message_events(msg)[:4] + [sse("error", {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}})] + message_events(msg)[4:]
    out = run_stream(b"".join(events))
    assert out[-1] == {"error": {"message": "Overloaded", "type": "overloaded_error",
                                 "param": None, "code": None}}
    assert "[DONE]" not in out
    assert all(c["choices"][0]["finish_reason"] is None for c in out[:-1])


def test_json_schema_stream_goes_to_content():
    msg = message(M, [{"type": "tool_use", "id": "t", "name": "person", "input": {"name": "Ada"}}],
                  stop_reason="tool_use")
    out = run_stream(b"".join(message_events(msg)), json_tool="person")
    deltas = [c["choices"][0]["delta"] for c in out[:-1]]
    assert json.loads("".join(d.get("content", "") for d in deltas)) == {"name": "Ada"}
    assert not any("tool_calls" in d for d in deltas)
    assert out[-2]["choices"][0]["finish_reason"] == "stop"


# -- the Responses API (issue 33) ------------------------------------------------------------------
def test_codex_tools_are_restated_and_turned_back():
    import json as _json
    from ccgate.openai.responses_output import to_response
    from ccgate.openai.responses_request import to_chat
    body = {"model": "m", "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
        {"role": "user", "content": "go"},
        {"type": "reasoning", "summary": []},
        {"type": "function_call", "call_id": "c1", "name": "spawn_agent",
         "namespace": "multi_agent_v1", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "spawned"}],
        "tools": [{"type": "custom", "name": "apply_patch", "description": "patch"},
                  {"type": "namespace", "name": "multi_agent_v1", "tools": [
                      {"type": "function", "name": "spawn_agent", "parameters": {}}]},
                  {"type": "web_search"}]}
    chat, names = to_chat(body)
    assert [t["function"]["name"] for t in chat["tools"]] == ["apply_patch",
                                                              "multi_agent_v1__spawn_agent"]
    assert names.web_search and names.custom == {"apply_patch"}
    assert chat["messages"][2]["tool_calls"][0]["function"]["name"] == "multi_agent_v1__spawn_agent"
    message = {"id": "msg_1", "stop_reason": "tool_use", "usage": {"input_tokens": 3},
               "content": [{"type": "tool_use", "id": "t1", "name": "apply_patch",
                            "input": {"input": "*** Begin Patch"}},
                           {"type": "tool_use", "id": "t2", "name": "multi_agent_v1__spawn_agent",
                            "input": {"task": "x"}}]}
    out = to_response(message, "m", 0, {}, None, names)["output"]
    assert out[0] == {**out[0], "type": "custom_tool_call", "input": "*** Begin Patch",
                      "call_id": "t1"}
    assert (out[1]["name"], out[1]["namespace"]) == ("spawn_agent", "multi_agent_v1")
    assert _json.loads(out[1]["arguments"]) == {"task": "x"}
