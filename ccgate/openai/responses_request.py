"""OpenAI Responses request -> the equivalent Chat Completions request (pure functions).

The Responses API says the same things as Chat Completions in other words: ``input`` items are
messages, ``function_call``/``function_call_output`` items are tool calls and their results,
``instructions`` is the system prompt, ``text.format`` is ``response_format``,
``reasoning.effort`` is ``reasoning_effort``. Restating a request in Chat Completions' words lets
one translation to Anthropic Messages (``request.to_anthropic``) serve both surfaces.

The gateway keeps no conversation (``store`` is accepted and nothing is stored):
``previous_response_id``, ``conversation``, stored ``prompt`` templates and ``item_reference``
items need state it does not have, and are refused with a 400 that says to send the whole
conversation in ``input``. ``reasoning`` items of earlier turns are dropped: Claude's thinking
cannot be replayed from an OpenAI summary.

Tools (what Codex CLI 0.171 sends, found by running it): ``function`` tools; ``custom``
(free-form text input, Codex's ``apply_patch``) as a function taking one string ``input``;
``namespace`` groups (Codex's ``multi_agent_v1``) flattened to functions named
``<namespace>__<name>``, answered with the name and ``namespace`` apart; ``web_search`` as
Claude's own server-side web search (billed per search like any other). Other tool types
(``file_search``, ``computer_use_preview``, ``code_interpreter``, ``mcp``, ``image_generation``,
``local_shell``) are refused with a 400 naming the type.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import TranslationError

STATELESS = ("the gateway keeps no conversation state: send the whole conversation in `input` "
             "(and use store: false)")
# Claude's web search tool, for a Responses ``web_search`` tool.
WEB_SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
CUSTOM_INPUT = {"type": "object", "properties": {"input": {"type": "string"}},
                "required": ["input"]}


@dataclass
class ToolNames:
    """How the Responses tools were restated: what the answer must turn back."""
    custom: set[str] = field(default_factory=set)  # custom tools (one string input)
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # flat -> (ns, name)
    web_search: bool = False  # Claude's web search tool is to be added

    def flat(self, name: Any, namespace: Any) -> Any:
        return f"{namespace}__{name}"[:64] if isinstance(namespace, str) and namespace else name


def _text_parts(content: Any, param: str) -> str | list[dict]:
    """A message's content as Chat Completions content (a string, or parts)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError("content must be a string or a list of parts", param)
    parts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"{param}[{i}]"
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.get("text")})
        elif kind == "refusal":
            parts.append({"type": "refusal", "refusal": part.get("refusal")})
        elif kind == "input_image":
            if not isinstance(part.get("image_url"), str):
                raise TranslationError("input_image needs an image_url (a file_id needs the "
                                       "OpenAI Files API, which this gateway does not have)",
                                       f"{where}.image_url")
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        elif kind == "input_file":
            if not isinstance(part.get("file_data"), str):
                raise TranslationError("input_file needs file_data (a base64 data URL); "
                                       "file_id and file_url are not supported", where)
            parts.append({"type": "file", "file": {"file_data": part["file_data"],
                                                   "filename": part.get("filename")}})
        else:
            raise TranslationError(f"unsupported content part type {kind!r}", f"{where}.type")
    return parts


def _messages(body: dict, names: ToolNames) -> list[dict]:
    """``instructions`` and ``input`` as Chat Completions messages."""
    out: list[dict] = []
    if body.get("instructions") is not None:
        if not isinstance(body["instructions"], str):
            raise TranslationError("instructions must be a string", "instructions")
        out.append({"role": "system", "content": body["instructions"]})
    raw = body.get("input")
    if isinstance(raw, str):
        return out + [{"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise TranslationError("input must be a string or a non-empty list of items", "input")
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise TranslationError("each input item must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            if item.get("role") not in ("user", "assistant", "system", "developer"):
                raise TranslationError("role must be user, assistant, system or developer",
                                       f"{where}.role")
            out.append({"role": item["role"],
                        "content": _text_parts(item.get("content"), f"{where}.content")})
        elif kind in ("function_call", "custom_tool_call"):
            arguments = item.get("arguments") if kind == "function_call" else json.dumps(
                {"input": item.get("input")}, ensure_ascii=False)
            call = {"id": item.get("call_id"), "type": "function", "function": {
                "name": names.flat(item.get("name"), item.get("namespace")),
                "arguments": arguments}}
            if out and out[-1]["role"] == "assistant" and out[-1].get("tool_calls"):
                out[-1]["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            out.append({"role": "tool", "tool_call_id": item.get("call_id"),
                        "content": output if isinstance(output, str) or output is None
                        else _text_parts(output, f"{where}.output")})
        elif kind in ("reasoning", "web_search_call"):
            continue  # Claude cannot replay these: its own blocks carry signatures
        elif kind == "item_reference":
            raise TranslationError(f"item_reference is not supported: {STATELESS}", where)
        else:
            raise TranslationError(f"unsupported input item type {kind!r}", f"{where}.type")
    return out


def _tools(raw: Any, names: ToolNames, where: str = "tools") -> list[dict]:
    """Chat Completions tools for Responses tools; ``names`` learns what must be turned back."""
    if not isinstance(raw, list):
        raise TranslationError("tools must be a list", where)
    tools = []
    for i, tool in enumerate(raw):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "namespace":
            inner = _tools(tool.get("tools"), names, f"{where}[{i}].tools")
            for entry in inner:
                fn = entry["function"]
                flat = names.flat(fn["name"], tool.get("name"))
                names.namespaced[flat] = (tool.get("name"), fn["name"])
                fn["name"] = flat
            tools += inner
            continue
        if kind == "web_search":
            names.web_search = True
            continue
        if kind == "function":
            fn = {"name": tool.get("name"), "parameters": tool.get("parameters")}
        elif kind == "custom":
            names.custom.add(tool.get("name"))
            fn = {"name": tool.get("name"), "parameters": CUSTOM_INPUT}
        else:
            raise TranslationError(f"tools of type {kind!r} are not supported through this "
                                   f"gateway (function, custom, namespace and web_search tools "
                                   f"are)", f"{where}[{i}].type")
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        tools.append({"type": "function", "function": fn})
    return tools


def _tool_choice(raw: Any) -> Any:
    if isinstance(raw, dict) and raw.get("type") in ("function", "custom"):
        return {"type": "function", "function": {"name": raw.get("name")}}
    if raw is None or isinstance(raw, str):
        return raw
    raise TranslationError("tool_choice must be auto, required, none or a named function",
                           "tool_choice")


def _response_format(text: Any) -> dict | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        return {"type": "json_schema", "json_schema": {
            "name": fmt.get("name"), "schema": fmt.get("schema"),
            "description": fmt.get("description")}}
    return {"type": fmt.get("type")}


def to_chat(body: dict) -> tuple[dict, ToolNames]:
    """The Chat Completions request that means what the Responses request ``body`` means, and
    how its tools were restated (what the answer must turn back)."""
    for name in ("previous_response_id", "conversation", "prompt"):
        if body.get(name) is not None:
            raise TranslationError(f"{name} is not supported: {STATELESS}", name)
    names = ToolNames()
    chat: dict = {}
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"], names)
    chat["messages"] = _messages(body, names)
    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "stream"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    fmt = _response_format(body.get("text"))
    if fmt is not None:
        chat["response_format"] = fmt
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    if not chat.get("tools"):
        chat.pop("tools", None)
    return chat, names
