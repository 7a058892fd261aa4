"""Anthropic Messages response -> OpenAI ChatCompletion, plus errors in OpenAI's shape (pure)."""
from __future__ import annotations

import json
import secrets

from ..core.errors import parse_anthropic_error

FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
    "max_tokens": "length", "model_context_window_exceeded": "length",
    "tool_use": "tool_calls", "refusal": "content_filter",
}

OPENAI_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "invalid_request_error", 429: "rate_limit_error",
    500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "api_error",
    529: "overloaded_error",
}


def finish_reason(stop_reason: str | None, json_tool: str | None = None) -> str:
    if json_tool and stop_reason == "tool_use":
        return "stop"  # the forced response_format tool is the answer, not a tool call
    return FINISH_REASONS.get(stop_reason or "end_turn", "stop")


def completion_id(message_id: str | None) -> str:
    suffix = (message_id or "").removeprefix("msg_") or secrets.token_hex(12)
    return f"chatcmpl-{suffix}"


def token_counts(usage: dict | None) -> tuple[int, int, int, int]:
    """``(prompt, cache reads, cache writes, output)`` of an Anthropic usage. OpenAI counts the
    whole prompt: Anthropic's input + cache write + cache read."""
    usage = usage if isinstance(usage, dict) else {}

    def n(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) else 0
    cached, written = n("cache_read_input_tokens"), n("cache_creation_input_tokens")
    return n("input_tokens") + written + cached, cached, written, n("output_tokens")


def take_message_delta(doc: dict, usage: dict) -> str | None:
    """Fold a ``message_delta`` event's usage into ``usage``; its stop reason, if it has one."""
    if isinstance(doc.get("usage"), dict):
        usage.update({k: v for k, v in doc["usage"].items() if v is not None})
    delta = doc.get("delta") if isinstance(doc.get("delta"), dict) else {}
    return delta["stop_reason"] if isinstance(delta.get("stop_reason"), str) else None


def openai_usage(usage: dict | None) -> dict:
    """Chat Completions' usage for an Anthropic usage."""
    prompt, cached, _, completion = token_counts(usage)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "prompt_tokens_details": {"cached_tokens": cached}}


def to_chat_completion(message: dict, model: str, created: int,
                       json_tool: str | None = None) -> dict:
    """A ChatCompletion for an Anthropic message; ``model`` is the name the client asked for."""
    texts, reasoning, tool_calls = [], [], []
    for block in message.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
        elif kind == "tool_use" and json_tool and block.get("name") == json_tool:
            texts.append(json.dumps(block.get("input") or {}, ensure_ascii=False))
        elif kind == "tool_use":
            tool_calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"),
                "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)}})
    result: dict = {"role": "assistant",
                    "content": "".join(texts) if texts or not tool_calls else None,
                    "refusal": None}
    if tool_calls:
        result["tool_calls"] = tool_calls
    if reasoning:
        result["reasoning_content"] = "".join(reasoning)
    return {
        "id": completion_id(message.get("id")),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": result, "logprobs": None,
                     "finish_reason": finish_reason(message.get("stop_reason"), json_tool)}],
        "usage": openai_usage(message.get("usage")),
    }


def openai_error(status: int, message: str, error_type: str | None = None,
                 param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type or OPENAI_ERROR_TYPES.get(status, "api_error"),
                      "param": param, "code": code}}


def error_from_anthropic(status: int, body: bytes) -> dict:
    """An upstream (Anthropic-shaped) error body in OpenAI's shape, same message."""
    error_type, message = parse_anthropic_error(body)
    message = message or f"upstream answered HTTP {status}"
    if error_type == "request_too_large":
        error_type = "invalid_request_error"
    return openai_error(status, message, error_type)
