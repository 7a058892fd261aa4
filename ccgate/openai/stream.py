"""Anthropic SSE events -> OpenAI ``chat.completion.chunk`` stream, one event at a time (pure).

Feed raw Anthropic bytes to ``StreamTranslator.feed``; it returns the OpenAI SSE bytes they
complete. One ``id``/``created``/``model`` for every chunk; ``delta.role`` only on the first;
tool calls numbered from 0 in order of appearance; exactly one chunk with ``finish_reason``;
``[DONE]`` only after a complete message. An ``event: error`` becomes ``data: {"error": …}`` and
ends the stream without ``finish_reason`` or ``[DONE]``.
"""
from __future__ import annotations

import json

from ..core.sse import stream_complete
from ..core.errors import anthropic_error_of, status_of_error_type
from .events import AnthropicEvents
from .response import completion_id, finish_reason, openai_error, openai_usage, take_message_delta

DONE = b"data: [DONE]\n\n"


def sse_data(obj: dict) -> bytes:
    """One ``data:`` event of an OpenAI stream."""
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class StreamTranslator(AnthropicEvents):
    def __init__(self, model: str, created: int, *, include_usage: bool = False,
                 json_tool: str | None = None):
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.json_tool = json_tool
        self.id: str | None = None
        self.usage: dict = {}
        self.stop_reason: str | None = None
        super().__init__()  # finished: [DONE] or an error was sent, nothing more may follow
        self._blocks: dict[int, tuple[str, int | None]] = {}  # anthropic index -> (kind, tool idx)
        self._tools = 0


    def close(self) -> bytes:
        """End of input: translate an event cut short of its closing blank line; a message that
        arrived whole (``stream_complete``) but without ``message_stop`` is finished as if it
        had come."""
        out = self.flush()
        if not self.finished and stream_complete(self.stop_reason):
            out += self._on_message_stop({})
        return out

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                 "model": self.model,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if self.include_usage:
            chunk["usage"] = None
        return sse_data(chunk)


    def _on_message_start(self, doc: dict) -> bytes:
        message = doc.get("message") if isinstance(doc.get("message"), dict) else {}
        self.id = completion_id(message.get("id"))
        if isinstance(message.get("usage"), dict):
            self.usage.update(message["usage"])
        return self._chunk({"role": "assistant", "content": ""})

    def _on_content_block_start(self, doc: dict) -> bytes:
        block = doc.get("content_block") if isinstance(doc.get("content_block"), dict) else {}
        index = doc.get("index")
        kind = block.get("type")
        if kind == "tool_use" and not (self.json_tool and block.get("name") == self.json_tool):
            tool_index = self._tools
            self._tools += 1
            self._blocks[index] = ("tool", tool_index)
            return self._chunk({"tool_calls": [{
                "index": tool_index, "id": block.get("id"), "type": "function",
                "function": {"name": block.get("name"), "arguments": ""}}]})
        self._blocks[index] = ("json" if kind == "tool_use" else kind, None)
        return b""

    def _on_content_block_delta(self, doc: dict) -> bytes:
        delta = doc.get("delta") if isinstance(doc.get("delta"), dict) else {}
        kind, tool_index = self._blocks.get(doc.get("index"), ("text", None))
        dtype = delta.get("type")
        if dtype == "text_delta" and delta.get("text"):
            return self._chunk({"content": delta["text"]})
        if dtype == "thinking_delta" and delta.get("thinking"):
            return self._chunk({"reasoning_content": delta["thinking"]})
        if dtype == "input_json_delta" and delta.get("partial_json"):
            if kind == "json":
                return self._chunk({"content": delta["partial_json"]})
            if kind == "tool":
                return self._chunk({"tool_calls": [{"index": tool_index, "function": {
                    "arguments": delta["partial_json"]}}]})
        return b""

    def _on_message_delta(self, doc: dict) -> bytes:
        self.stop_reason = take_message_delta(doc, self.usage) or self.stop_reason
        return b""

    def _on_message_stop(self, doc: dict) -> bytes:
        self.finished = True
        out = self._chunk({}, finish_reason(self.stop_reason, self.json_tool))
        if self.include_usage:
            out += sse_data({"id": self.id, "object": "chat.completion.chunk",
                          "created": self.created, "model": self.model, "choices": [],
                          "usage": openai_usage(self.usage)})
        return out + DONE

    def _on_error(self, doc: dict) -> bytes:
        self.finished = True
        error_type, message = anthropic_error_of(doc)
        error_type = error_type or "api_error"
        return sse_data(openai_error(status_of_error_type(error_type), message or "stream error",
                                     error_type))
