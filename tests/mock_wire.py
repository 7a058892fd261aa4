"""The Anthropic wire format as tests write it: messages, their SSE events, error bodies (pure:
the unit tests use these without the mock server)."""
from __future__ import annotations

import json


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def message(model: str, blocks: list[dict], *, input_tokens: int = 25, output_tokens: int = 12,
            cache_creation: int = 0, cache_read: int = 0, stop_reason: str = "end_turn",
            msg_id: str = "msg_mock01") -> dict:
    return {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": blocks,
        "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_creation_input_tokens": cache_creation,
                  "cache_read_input_tokens": cache_read},
    }


def message_events(msg: dict) -> list[bytes]:
    """The SSE events Anthropic sends for ``msg``, text split into small deltas."""
    usage = msg["usage"]
    start = {**msg, "content": [], "stop_reason": None,
             "usage": {**usage, "output_tokens": 1}}
    out = [sse("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            out.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}}))
            text = block["text"]
            for j in range(0, len(text), 8):
                out.append(sse("content_block_delta", {
                    "type": "content_block_delta", "index": i,
                    "delta": {"type": "text_delta", "text": text[j:j + 8]}}))
        elif block["type"] == "tool_use":
            out.append(sse("content_block_start", {
                "type": "content_block_start", "index": i,
                "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"],
                                  "input": {}}}))
            raw = json.dumps(block["input"])
            for j in range(0, len(raw), 10):
                out.append(sse("content_block_delta", {
                    "type": "content_block_delta", "index": i,
                    "delta": {"type": "input_json_delta", "partial_json": raw[j:j + 10]}}))
        out.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    out.append(sse("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]}}))
    out.append(sse("message_stop", {"type": "message_stop"}))
    return out


def error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": error_type, "message": message}}).encode()
