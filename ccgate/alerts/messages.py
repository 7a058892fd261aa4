"""Alerts as data, and how each kind of target is sent one (no I/O).

An ``Alert`` says what happened (``event``), to what (``subject``: with the event, the dedupe
key), in English and Chinese, with the numbers in ``data``. ``delivery`` turns it into the HTTP
request a target expects: a signed JSON webhook, or a chat message (Telegram, WeCom, Feishu,
DingTalk).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TELEGRAM_API = "https://api.telegram.org"
SIGNATURE_HEADER = "x-ccgate-signature"


@dataclass(frozen=True)
class Alert:
    event: str
    subject: str
    en: str
    zh: str
    data: dict = field(default_factory=dict)
    dedupe_s: float | None = None  # how long it is not repeated (None: the sender's default)

    def text(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the body>``, as in ``x-ccgate-signature``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _json(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def delivery(target: dict, alert: Alert, *, gateway: str, language: str,
             now_iso: str) -> tuple[str, dict[str, str], bytes]:
    """``(url, headers, body)`` of the POST that tells ``target`` about ``alert``."""
    kind, text = target["type"], f"[{gateway}] {alert.text(language)}"
    headers = {"content-type": "application/json"}
    if kind == "webhook":
        body = _json({"event": alert.event, "time": now_iso, "gateway": gateway,
                      "message": alert.text(language), "data": alert.data})
        if target.get("secret"):
            headers[SIGNATURE_HEADER] = signature(target["secret"], body)
        return target["url"], headers, body
    if kind == "telegram":
        base = (target.get("apiBase") or TELEGRAM_API).rstrip("/")
        return (f"{base}/bot{target['botToken']}/sendMessage", headers,
                _json({"chat_id": target["chatId"], "text": text,
                       "disable_web_page_preview": True}))
    if kind == "feishu":
        return target["url"], headers, _json({"msg_type": "text", "content": {"text": text}})
    return target["url"], headers, _json({"msgtype": "text", "text": {"content": text}})


def accepted(kind: str, status: int, body: bytes) -> bool:
    """Whether the target took the message: 2xx, and for the chat APIs their own ``ok`` field."""
    if not 200 <= status < 300:
        return False
    if kind == "webhook":
        return True
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return False
    if kind == "telegram":
        return doc.get("ok") is True
    if kind == "feishu":
        return doc.get("code", doc.get("StatusCode", 0)) == 0
    return doc.get("errcode", 0) == 0  # wecom, dingtalk


def describe(target: dict) -> str:
    """A target as logs may name it: never a token, never a URL's path or query."""
    if target["type"] == "telegram":
        return f"telegram chat {target['chatId']}"
    return f"{target['type']} {urlsplit(target['url']).hostname}"
