"""Anthropic SSE events -> the OpenAI Responses stream, one event at a time (pure).

Each event carries its ``sequence_number``: ``response.created``, ``response.in_progress``, then
per output item ``response.output_item.added``, its part (``content_part.added``,
``reasoning_summary_part.added``), its deltas (``output_text.delta``,
``function_call_arguments.delta``, ``reasoning_summary_text.delta``), their ``.done`` events and
``response.output_item.done``; last ``response.completed`` (``response.incomplete`` when the
answer hit ``max_output_tokens``, ``response.failed`` on an upstream error or a cut stream). The
items are those of ``responses_output.Items``; every lifecycle event names the same response id.
"""
from __future__ import annotations

import json

from ..core.errors import anthropic_error_of
from ..core.sse import stream_complete
from .events import AnthropicEvents
from .responses_output import Items, finished, response_id, response_shell, responses_usage, text_part
from .response import take_message_delta
from .responses_request import ToolNames


def event_bytes(kind: str, doc: dict) -> bytes:
    return (b"event: " + kind.encode() + b"\ndata: "
            + json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n")


class ResponsesStream(AnthropicEvents):
    """Feed Anthropic SSE bytes; get the Responses stream events they complete."""

    def __init__(self, model: str, created: int, echo: dict, json_tool: str | None = None,
                 names: ToolNames | None = None):
        self.model, self.created, self.echo = model, created, echo
        self.items = Items(json_tool, names or ToolNames())
        self.response: dict | None = None
        self.usage: dict = {}
        self.stop_reason: str | None = None
        self._seq = 0
        super().__init__()
        self._open: dict[int, tuple[int, dict, list[str]]] = {}  # block -> (output index, item, text)

    def _emit(self, kind: str, **fields) -> bytes:
        doc = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event_bytes(kind, doc)


    def end(self) -> bytes:
        """End of input (the relay's transform): a message that arrived whole is completed;
        anything else failed."""
        out = self.flush()
        if not self.finished and stream_complete(self.stop_reason):
            out += self._on_message_stop({})
        if not self.finished:
            out += self._fail("api_error", "the upstream stream ended before the response was "
                                           "complete")
        return out


    def _started(self, message_id: str | None = None) -> bytes:
        if self.response is not None:
            return b""
        self.response = response_shell(response_id(message_id), self.created, self.model,
                                       self.echo)
        return (self._emit("response.created", response=dict(self.response))
                + self._emit("response.in_progress", response=dict(self.response)))

    def _on_message_start(self, doc: dict) -> bytes:
        message = doc.get("message") if isinstance(doc.get("message"), dict) else {}
        if isinstance(message.get("usage"), dict):
            self.usage.update(message["usage"])
        return self._started(message.get("id"))

    def _on_content_block_start(self, doc: dict) -> bytes:
        block = doc.get("content_block") if isinstance(doc.get("content_block"), dict) else {}
        item = self.items.start(block)
        if item is None:
            return b""
        out = self._started()
        index = len(self.response["output"])
        self.response["output"].append(item)
        self._open[doc.get("index")] = (index, item, [])
        out += self._emit("response.output_item.added", output_index=index, item=dict(item))
        if item["type"] == "message":
            out += self._emit("response.content_part.added", item_id=item["id"],
                              output_index=index, content_index=0, part=text_part(""))
        elif item["type"] == "reasoning":
            out += self._emit("response.reasoning_summary_part.added", item_id=item["id"],
                              output_index=index, summary_index=0,
                              part={"type": "summary_text", "text": ""})
        elif item["type"] == "web_search_call":
            out += self._emit("response.web_search_call.in_progress", item_id=item["id"],
                              output_index=index)
        return out

    def _on_content_block_delta(self, doc: dict) -> bytes:
        found = self._open.get(doc.get("index"))
        delta = doc.get("delta") if isinstance(doc.get("delta"), dict) else {}
        text = delta.get("text") or delta.get("thinking") or delta.get("partial_json")
        if found is None or not isinstance(text, str) or not text:
            return b""
        index, item, texts = found
        texts.append(text)
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            return self._emit("response.output_text.delta", **where, content_index=0,
                              delta=text, logprobs=[])
        if item["type"] == "reasoning":
            return self._emit("response.reasoning_summary_text.delta", **where, summary_index=0,
                              delta=text)
        if item["type"] == "function_call":
            return self._emit("response.function_call_arguments.delta", **where, delta=text)
        return b""  # a custom tool's input is whole only at the end (it comes wrapped in JSON)

    def _on_content_block_stop(self, doc: dict) -> bytes:
        found = self._open.pop(doc.get("index"), None)
        if found is None:
            return b""
        index, item, texts = found
        item = self.items.finish(item, "".join(texts))
        self.response["output"][index] = item
        where = {"item_id": item["id"], "output_index": index}
        out = b""
        if item["type"] == "message":
            part = item["content"][0]
            out += self._emit("response.output_text.done", **where, content_index=0,
                              text=part["text"], logprobs=[])
            out += self._emit("response.content_part.done", **where, content_index=0, part=part)
        elif item["type"] == "reasoning":
            text = item["summary"][0]["text"]
            out += self._emit("response.reasoning_summary_text.done", **where, summary_index=0,
                              text=text)
            out += self._emit("response.reasoning_summary_part.done", **where, summary_index=0,
                              part=item["summary"][0])
        elif item["type"] == "function_call":
            out += self._emit("response.function_call_arguments.done", **where,
                              name=item["name"], arguments=item["arguments"])
        elif item["type"] == "web_search_call":
            out += self._emit("response.web_search_call.completed", **where)
        else:
            out += self._emit("response.custom_tool_call_input.delta", **where,
                              delta=item["input"])
            out += self._emit("response.custom_tool_call_input.done", **where,
                              input=item["input"])
        return out + self._emit("response.output_item.done", output_index=index, item=item)

    def _on_message_delta(self, doc: dict) -> bytes:
        self.stop_reason = take_message_delta(doc, self.usage) or self.stop_reason
        return b""

    def _on_message_stop(self, doc: dict) -> bytes:
        out = self._started()
        self.finished = True
        response = finished(self.response, self.stop_reason, self.usage)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return out + self._emit(kind, response=response)

    def _on_error(self, doc: dict) -> bytes:
        error_type, message = anthropic_error_of(doc)
        return self._fail(error_type or "api_error", message or "stream error")

    def _fail(self, code: str, message: str) -> bytes:
        out = self._started()
        self.finished = True
        self.response.update(status="failed", error={"code": code, "message": message},
                             usage=responses_usage(self.usage))
        return out + self._emit("response.failed", response=self.response)

