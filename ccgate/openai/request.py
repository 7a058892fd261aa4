"""OpenAI Chat Completions request -> Anthropic Messages request (pure functions).

The Anthropic body is built from scratch out of the fields that have a meaning there, so OpenAI-only
fields (``seed``, ``frequency_penalty``, ``logit_bias``, ``logprobs``, …) are never forwarded.
Problems raise ``TranslationError`` naming the offending parameter.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..settings import OpenAIConfig

THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}
NO_THINKING = ("none", "minimal")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
JSON_TOOL = "json_response"
JSON_OBJECT_INSTRUCTION = ("Respond with a single valid JSON object only: no prose and no "
                           "Markdown code fences.")
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)
_TOOL_NAME = re.compile(r"[^a-zA-Z0-9_-]")


class TranslationError(ValueError):
    """The OpenAI request cannot be expressed for Anthropic; ``param`` names the field."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass
class Translated:
    body: dict  # the Anthropic Messages request
    json_tool: str | None = None  # response_format json_schema: the forced tool's name
    include_usage: bool = False  # stream_options.include_usage


def resolve_model(name: Any, aliases: dict, default: str | None) -> str:
    """The Claude model for an OpenAI model name: alias, a Claude name as is, else the default."""
    if not isinstance(name, str) or not name:
        raise TranslationError("model is required", "model")
    if name in aliases:
        return aliases[name]
    if name.lower().startswith("claude-"):
        return name
    if default:
        return default
    raise TranslationError(f"The model `{name}` does not exist", "model", "model_not_found")


def _text_of(content: Any, param: str) -> str:
    """System/developer content: a string, or a list of text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or \
                    not isinstance(part.get("text"), str):
                raise TranslationError("system messages may only contain text parts",
                                       f"{param}[{i}]")
            parts.append(part["text"])
        return "\n".join(parts)
    if content is None:
        return ""
    raise TranslationError("content must be a string or a list of parts", param)


def _image_block(part: dict, param: str) -> dict:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise TranslationError("image_url.url must be a string", f"{param}.image_url.url")
    if url.startswith("data:"):
        m = _DATA_URL.fullmatch(url)
        if not m:
            raise TranslationError("image data URLs must look like data:image/png;base64,…",
                                   f"{param}.image_url.url")
        media_type = m.group(1).lower()
        if media_type not in IMAGE_TYPES:
            raise TranslationError(f"unsupported image type {media_type}; use one of "
                                   f"{', '.join(IMAGE_TYPES)}", f"{param}.image_url.url")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": m.group(2)}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError("image_url.url must be an http(s) URL or a base64 data URL",
                           f"{param}.image_url.url")


def _blocks(content: Any, param: str, allow_images: bool = True) -> list[dict]:
    """User/assistant/tool content as Anthropic blocks; empty text is dropped."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise TranslationError("content must be a string or a list of parts", param)
    blocks = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise TranslationError("a text part needs a string 'text'", f"{where}.text")
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url" and allow_images:
            blocks.append(_image_block(part, where))
        elif kind == "refusal" and isinstance(part.get("refusal"), str) and part["refusal"]:
            blocks.append({"type": "text", "text": part["refusal"]})
        else:
            raise TranslationError(f"unsupported content part type {kind!r}", f"{where}.type")
    return blocks


def _tool_use_blocks(tool_calls: Any, param: str) -> list[dict]:
    if not isinstance(tool_calls, list):
        raise TranslationError("tool_calls must be a list", param)
    blocks = []
    for i, call in enumerate(tool_calls):
        where = f"{param}[{i}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or \
                not isinstance(call.get("id"), str):
            raise TranslationError("each tool call needs an id and a function name", where)
        raw = fn.get("arguments") or ""
        if not isinstance(raw, str):
            raise TranslationError("function.arguments must be a JSON string",
                                   f"{where}.function.arguments")
        try:
            args = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise TranslationError("function.arguments is not valid JSON",
                                   f"{where}.function.arguments") from None
        if not isinstance(args, dict):
            raise TranslationError("function.arguments must be a JSON object",
                                   f"{where}.function.arguments")
        blocks.append({"type": "tool_use", "id": call["id"], "name": fn["name"], "input": args})
    return blocks


def _append(messages: list[dict], role: str, blocks: list[dict]) -> None:
    """Add blocks as a message of ``role``, merging with the previous message of the same role."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        previous = messages[-1]["content"]
        # tool results must lead a user message; what the user says follows them
        if role == "user" and blocks[0]["type"] == "tool_result":
            lead = [b for b in previous if b["type"] == "tool_result"]
            rest = [b for b in previous if b["type"] != "tool_result"]
            messages[-1]["content"] = lead + blocks + rest
        else:
            previous.extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _messages(raw: Any) -> tuple[list[str], list[dict]]:
    if not isinstance(raw, list) or not raw:
        raise TranslationError("messages must be a non-empty list", "messages")
    system: list[str] = []
    out: list[dict] = []
    for i, msg in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise TranslationError("each message must be an object", where)
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            text = _text_of(content, f"{where}.content")
            if text.strip():
                system.append(text)
        elif role == "user":
            _append(out, "user", _blocks(content, f"{where}.content"))
        elif role == "assistant":
            blocks = _blocks(content, f"{where}.content", allow_images=False)
            if msg.get("tool_calls"):
                blocks += _tool_use_blocks(msg["tool_calls"], f"{where}.tool_calls")
            _append(out, "assistant", blocks)
        elif role == "tool":
            if not isinstance(msg.get("tool_call_id"), str):
                raise TranslationError("a tool message needs tool_call_id", f"{where}.tool_call_id")
            result_blocks = _blocks(content, f"{where}.content")
            result: dict = {"type": "tool_result", "tool_use_id": msg["tool_call_id"]}
            if result_blocks:
                result["content"] = result_blocks
            _append(out, "user", [result])
        else:
            raise TranslationError(f"unsupported role {role!r}", f"{where}.role")
    if not out:
        raise TranslationError("messages must contain at least one user or assistant message "
                               "with content", "messages")
    return system, out


def _tools(raw: Any) -> list[dict]:
    if not isinstance(raw, list):
        raise TranslationError("tools must be a list", "tools")
    tools = []
    for i, tool in enumerate(raw):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or \
                not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise TranslationError("only function tools with a name are supported", f"tools[{i}]")
        params = fn.get("parameters")
        schema = params if isinstance(params, dict) and params else {"type": "object",
                                                                     "properties": {}}
        entry = {"name": fn["name"], "input_schema": schema}
        if isinstance(fn.get("description"), str) and fn["description"]:
            entry["description"] = fn["description"]
        tools.append(entry)
    return tools


def _tool_choice(raw: Any) -> dict:
    if raw in ("auto", None):
        return {"type": "auto"}
    if raw == "required":
        return {"type": "any"}
    if raw == "none":
        return {"type": "none"}
    if isinstance(raw, dict) and isinstance(raw.get("function"), dict) and \
            isinstance(raw["function"].get("name"), str):
        return {"type": "tool", "name": raw["function"]["name"]}
    raise TranslationError("tool_choice must be auto, required, none or a named function",
                           "tool_choice")


def _number(body: dict, name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TranslationError(f"{name} must be a number", name)
    return value


def to_anthropic(body: dict, model: str,
                 default_max_tokens: int = OpenAIConfig.default_max_tokens) -> Translated:
    """Translate a Chat Completions request for ``model`` (already resolved)."""
    n = body.get("n")
    if n not in (None, 1):
        raise TranslationError("only n=1 is supported", "n")
    system, messages = _messages(body.get("messages"))
    out: dict = {"model": model, "messages": messages}

    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = default_max_tokens
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise TranslationError("max_tokens must be a positive integer", "max_tokens")
    out["max_tokens"] = max_tokens

    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise TranslationError("stop must be a string or a list of strings", "stop")
        stops = [s for s in stops if s.strip()]
        if stops:
            out["stop_sequences"] = stops
    temperature = _number(body, "temperature")
    if temperature is not None:
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    top_p = _number(body, "top_p")
    if top_p is not None:
        out["top_p"] = top_p
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}

    json_tool = None
    tools = _tools(body["tools"]) if body.get("tools") else []
    choice = _tool_choice(body.get("tool_choice")) if tools or body.get("tool_choice") else None
    fmt = body.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "json_schema":
            spec = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
            schema = spec.get("schema") if isinstance(spec.get("schema"), dict) else {
                "type": "object"}
            json_tool = _TOOL_NAME.sub("_", str(spec.get("name") or JSON_TOOL))[:64]
            tools.append({"name": json_tool, "input_schema": schema,
                          "description": spec.get("description") or
                          "Give the answer as this tool's input; it must match the schema."})
            choice = {"type": "tool", "name": json_tool}
        elif kind == "json_object":
            system.append(JSON_OBJECT_INSTRUCTION)
        elif kind != "text":
            raise TranslationError("response_format.type must be text, json_object or "
                                   "json_schema", "response_format.type")
    if tools:
        out["tools"] = tools
    if choice is not None:
        if body.get("parallel_tool_calls") is False and choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
        out["tool_choice"] = choice
    if system:
        out["system"] = "\n\n".join(system)

    effort = body.get("reasoning_effort")
    if effort is not None and effort not in NO_THINKING:
        if effort not in THINKING_BUDGETS:
            raise TranslationError("reasoning_effort must be low, medium or high",
                                   "reasoning_effort")
        budget = THINKING_BUDGETS[effort]
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if out["max_tokens"] <= budget:
            out["max_tokens"] = budget + out["max_tokens"]
        out.pop("temperature", None)
        out.pop("top_p", None)

    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise TranslationError("stream must be a boolean", "stream")
    if stream:
        out["stream"] = True
    options = body.get("stream_options")
    include_usage = bool(stream and isinstance(options, dict) and options.get("include_usage"))
    return Translated(out, json_tool, include_usage)
