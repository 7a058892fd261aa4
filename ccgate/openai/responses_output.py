"""Anthropic Messages answers -> OpenAI Responses answers, whole or as a stream (pure).

An Anthropic message becomes a ``Response``: its thinking blocks ``reasoning`` items (the
thinking as the summary), its text blocks ``message`` items with one ``output_text`` part, its
tool calls ``function_call`` items (``custom_tool_call`` for custom tools, whose one string
``input`` is unwrapped), and the forced ``text.format`` tool's input the message's text. The stream's
events are built in ``responses_stream.py`` from the same items.
"""
from __future__ import annotations

import json
import secrets

from .response import token_counts
from .responses_request import ToolNames


def response_id(message_id: str | None) -> str:
    return "resp_" + ((message_id or "").removeprefix("msg_") or secrets.token_hex(12))


def responses_usage(usage: dict | None) -> dict:
    """A Response's usage for an Anthropic usage (the whole prompt, cache included)."""
    prompt, cached, written, output = token_counts(usage)
    return {"input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + output}


def response_shell(rid: str, created: int, model: str, echo: dict) -> dict:
    """A Response with no output yet; ``echo``: the request fields a Response repeats."""
    return {"id": rid, "object": "response", "created_at": created, "status": "in_progress",
            "model": model, "output": [], "error": None, "incomplete_details": None,
            "usage": None, "store": False, "previous_response_id": None, "truncation": "disabled",
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "metadata": {},
            "instructions": None, "temperature": None, "top_p": None, "user": None,
            "max_output_tokens": None, "text": {"format": {"type": "text"}}, "reasoning": None,
            **echo}


def finished(response: dict, stop_reason: str | None, usage: dict) -> dict:
    if stop_reason in ("max_tokens", "model_context_window_exceeded"):
        response.update(status="incomplete",
                        incomplete_details={"reason": "max_output_tokens"})
    else:
        response["status"] = "completed"
    response["usage"] = responses_usage(usage)
    return response


class Items:
    """Turns Anthropic content blocks into output items, whole or delta by delta."""

    def __init__(self, json_tool: str | None, names: ToolNames):
        self.json_tool, self.names = json_tool, names
        self.serial = 0

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}_{secrets.token_hex(8)}{self.serial:02d}"

    def start(self, block: dict) -> dict | None:
        """The empty item a block starts (None: a block the client does not see)."""
        kind = block.get("type")
        if kind == "text" or (kind == "tool_use" and block.get("name") == self.json_tool):
            return {"type": "message", "id": self._id("msg"), "role": "assistant",
                    "status": "in_progress", "content": []}
        if kind == "thinking":
            return {"type": "reasoning", "id": self._id("rs"), "summary": []}
        if kind == "tool_use" and block.get("name") in self.names.custom:
            return {"type": "custom_tool_call", "id": self._id("ctc"), "call_id": block.get("id"),
                    "name": block.get("name"), "input": "", "status": "in_progress"}
        if kind == "tool_use":
            item = {"type": "function_call", "id": self._id("fc"), "call_id": block.get("id"),
                    "name": block.get("name"), "arguments": "", "status": "in_progress"}
            if block.get("name") in self.names.namespaced:
                item["namespace"], item["name"] = self.names.namespaced[block["name"]]
            return item
        if kind == "server_tool_use" and block.get("name") == "web_search":
            return {"type": "web_search_call", "id": self._id("ws"), "status": "in_progress",
                    "action": {"type": "search", "query": ""}}
        return None  # a search's results: Claude reads them, the client sees its answer

    def finish(self, item: dict, text: str) -> dict:
        """The item whole, given all the text its block carried."""
        if item["type"] == "message":
            item["content"] = [text_part(text)]
        elif item["type"] == "reasoning":
            item["summary"] = [{"type": "summary_text", "text": text}]
        elif item["type"] == "web_search_call":
            try:
                query = json.loads(text or "{}").get("query", "")
            except (ValueError, AttributeError):
                query = ""
            item["action"]["query"] = query if isinstance(query, str) else ""
        elif item["type"] == "custom_tool_call":
            try:
                value = json.loads(text or "{}").get("input", "")
            except (ValueError, AttributeError):
                value = text
            item["input"] = value if isinstance(value, str) else json.dumps(value)
        else:
            item["arguments"] = text or "{}"
        if "status" in item:
            item["status"] = "completed"
        return item

    def whole(self, block: dict) -> dict | None:
        item = self.start(block)
        if item is None:
            return None
        kind = block.get("type")
        text = (block.get("text", "") if kind == "text" else block.get("thinking", "")
                if kind == "thinking" else json.dumps(block.get("input") or {},
                                                      ensure_ascii=False))
        return self.finish(item, text)


def to_response(message: dict, model: str, created: int, echo: dict,
                json_tool: str | None = None, names: ToolNames | None = None) -> dict:
    """The Response for a whole Anthropic message; ``model``: the name the client asked for."""
    items = Items(json_tool, names or ToolNames())
    response = response_shell(response_id(message.get("id")), created, model, echo)
    response["output"] = [item for block in message.get("content") or []
                          if isinstance(block, dict) for item in [items.whole(block)] if item]
    return finished(response, message.get("stop_reason"), message.get("usage") or {})


def text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
