"""Issue 33, part 1: ``POST /openai/v1/responses`` over Claude, with the official ``openai`` SDK:
plain, streamed (event order, sequence numbers, usage), a function call and its output round
trip, structured output, refusals of what needs state, metering."""
import json
from pathlib import Path

import openai
import pytest
import requests
from pydantic import BaseModel

from tests.e2e.servers import wait_until
from tests.helpers import TENANT_KEY
from tests.mock_upstream import MockResponse, message, message_events

MODEL = "claude-sonnet-4-5-20250929"
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


@pytest.fixture
def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/openai/v1", api_key=TENANT_KEY, max_retries=0)


def records(gw) -> list[dict]:
    return [json.loads(line) for f in (Path(gw.gateway.data_dir) / "usage").rglob("*.json")
            for line in f.read_text().splitlines()]


def test_plain_answer_with_usage_and_a_record(gw, client, upstream):
    r = client.responses.create(model=MODEL, input="hi", instructions="Be brief.",
                                max_output_tokens=300, store=False)
    assert r.output_text == "Hello from primary!" and r.status == "completed"
    assert r.model == MODEL and r.id.startswith("resp_") and r.store is False
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (25, 12, 37)
    sent = upstream.requests[-1].json
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 300
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    wait_until(lambda: len(records(gw)) == 1)
    record = records(gw)[0]
    assert record["api"] == "openai-responses" and record["outputTokens"] == 12
    assert record["totalCost"] > 0


def test_streamed_events_in_the_documented_order(gw, client):
    with client.responses.stream(model=MODEL, input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert "response.output_text.delta" in kinds
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1
    assert final.output_text == "Hello from primary!"
    assert final.usage.output_tokens == 12 and final.usage.input_tokens == 25
    wait_until(lambda: len(records(gw)) == 1)
    assert records(gw)[0]["stream"] is True and records(gw)[0]["api"] == "openai-responses"


@pytest.mark.parametrize("stream", [False, True])
def test_a_function_call_and_its_output_round_trip(gw, client, upstream, stream):
    ask = dict(model=MODEL, input=[{"role": "user", "content": "Weather in Paris?"}],
               tools=[WEATHER])
    if stream:
        with client.responses.stream(**ask) as s:
            kinds = [e.type for e in s]
            first = s.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
        assert "response.function_call_arguments.done" in kinds
    else:
        first = client.responses.create(**ask)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris", "unit": "celsius"}
    second = client.responses.create(model=MODEL, tools=[WEATHER], input=[
        *ask["input"], *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "22 C, sunny"}])
    assert second.output_text == 'The tool said [{"type": "text", "text": "22 C, sunny"}]'
    sent = upstream.requests[-1].json["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["content"][-1]["type"] == "tool_use"
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": calls[0].call_id,
                                     "content": [{"type": "text", "text": "22 C, sunny"}]}


class Person(BaseModel):
    name: str
    age: int


def test_structured_output(client, upstream):
    parsed = client.responses.parse(model=MODEL, input="Who wrote the first program?",
                                    text_format=Person)
    assert parsed.output_parsed == Person(name="Ada", age=36)
    sent = upstream.requests[-1].json
    assert sent["tool_choice"]["type"] == "tool" and sent["tools"][0]["name"] == "Person"


@pytest.mark.parametrize("body,param", [
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0]"),
    ({"input": 5}, "input"),
])
def test_what_needs_state_or_a_tool_claude_lacks_is_a_clear_400(gw, upstream, body, param):
    r = requests.post(gw.url + "/openai/v1/responses", headers={"authorization": f"Bearer {TENANT_KEY}"},
                      json={"model": MODEL, "input": "hi", **body})
    assert r.status_code == 400 and r.json()["error"]["param"] == param
    assert upstream.requests == []


def test_an_upstream_error_mid_stream_fails_the_response(gw, client, upstream):
    events = message_events(message(MODEL, [{"type": "text", "text": "partial answer"}]))
    cut = events[:4] + [b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
                        b'"message":"Overloaded"}}\n\n']
    upstream.handler = lambda req: upstream.stream(cut)
    r = requests.post(gw.url + "/openai/v1/responses", stream=True,
                      headers={"authorization": f"Bearer {TENANT_KEY}"},
                      json={"model": MODEL, "input": "hi", "stream": True})
    text = r.text
    assert "event: response.failed" in text and "Overloaded" in text
    assert "response.completed" not in text


def test_an_upstream_refusal_keeps_its_status_in_openai_shape(gw, client, upstream):
    upstream.handler = lambda req: MockResponse(429, headers=[("retry-after", "7")], body=json.dumps(
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}).encode())
    with pytest.raises(openai.RateLimitError) as e:
        client.responses.create(model=MODEL, input="hi")
    assert e.value.body["message"] == "slow down"


def test_an_unknown_openai_path_is_refused_after_the_key(gw, upstream):
    assert requests.post(gw.url + "/openai/v1/embeddings", json={}).status_code == 401
    r = requests.post(gw.url + "/openai/v1/embeddings", json={},
                      headers={"authorization": f"Bearer {TENANT_KEY}"})
    assert r.status_code == 404 and "responses" in r.json()["error"]["message"]
    assert upstream.requests == []
