"""OpenAI Chat Completions request -> Anthropic Messages request (pure functions).

The Anthropic body is built from scratch out of the fields that have a meaning there, so OpenAI-only
fields (``seed``, ``frequency_penalty``, ``logit_bias``, ``logprobs``, …) are never forwarded.
Problems raise ``TranslationError`` naming the offending parameter.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..config.settings import OpenAIConfig
from .errors import TranslationError
from .messages import translate_messages

THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}
NO_THINKING = ("none", "minimal")
JSON_TOOL = "json_response"
JSON_OBJECT_INSTRUCTION = ("Respond with a single valid JSON object only: no prose and no "
                           "Markdown code fences.")
_TOOL_NAME = re.compile(r"[^a-zA-Z0-9_-]")


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
    if body.get("n") not in (None, 1):
        raise TranslationError("only n=1 is supported", "n")
    system, messages = translate_messages(body.get("messages"))
    out: dict = {"model": model, "messages": messages}
    _sampling(body, out, default_max_tokens)
    json_tool = _tooling(body, system, out)
    if system:
        out["system"] = "\n\n".join(system)
    _thinking(body, out)
    return Translated(out, json_tool, _streaming(body, out))


def _sampling(body: dict, out: dict, default_max_tokens: int) -> None:
    """max_tokens, stop sequences, temperature, top_p and the end user."""
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


def _tooling(body: dict, system: list[str], out: dict) -> str | None:
    """tools, tool_choice and response_format; the forced JSON tool's name, if one is used."""
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
    return json_tool


def _thinking(body: dict, out: dict) -> None:
    """reasoning_effort as extended thinking (which allows no temperature or top_p)."""
    effort = body.get("reasoning_effort")
    if effort is None or effort in NO_THINKING:
        return
    if effort not in THINKING_BUDGETS:
        raise TranslationError("reasoning_effort must be low, medium or high", "reasoning_effort")
    budget = THINKING_BUDGETS[effort]
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if out["max_tokens"] <= budget:
        out["max_tokens"] = budget + out["max_tokens"]
    out.pop("temperature", None)
    out.pop("top_p", None)


def _streaming(body: dict, out: dict) -> bool:
    """The stream flag; whether the stream should end with a usage chunk."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise TranslationError("stream must be a boolean", "stream")
    if stream:
        out["stream"] = True
    options = body.get("stream_options")
    return bool(stream and isinstance(options, dict) and options.get("include_usage"))
