"""OpenAI chat ``messages`` -> Anthropic ``system`` and ``messages`` (pure functions)."""
from __future__ import annotations

import base64
import json
import re
from typing import Any

from .errors import TranslationError

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)


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


def _document_block(part: dict, param: str) -> dict:
    """A ``file`` part (a base64 data URL) as a document: PDF as it is, plain text decoded."""
    file = part.get("file") if isinstance(part.get("file"), dict) else {}
    m = _DATA_URL.fullmatch(file.get("file_data") or "")
    if not m:
        raise TranslationError("file.file_data must be a base64 data URL like "
                               "data:application/pdf;base64,…", f"{param}.file.file_data")
    media_type = m.group(1).lower()
    if media_type == "application/pdf":
        source = {"type": "base64", "media_type": media_type, "data": m.group(2)}
    elif media_type == "text/plain":
        try:
            text = base64.b64decode(m.group(2), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise TranslationError("file.file_data is not base64 of UTF-8 text",
                                   f"{param}.file.file_data") from None
        source = {"type": "text", "media_type": media_type, "data": text}
    else:
        raise TranslationError(f"unsupported file type {media_type}; use application/pdf or "
                               f"text/plain", f"{param}.file.file_data")
    block = {"type": "document", "source": source}
    if isinstance(file.get("filename"), str) and file["filename"]:
        block["title"] = file["filename"]
    return block


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
        elif kind == "file" and allow_images:
            blocks.append(_document_block(part, where))
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


def translate_messages(raw: Any) -> tuple[list[str], list[dict]]:
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
