"""Typed, frozen sections of the config, each with its defaults in one place.

Each ``from_doc`` takes the section as it stands in the (already validated) JSON file; field names
in the files are the Node CCGate's, durations there are milliseconds and become seconds here.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Mapping
from urllib.parse import urlsplit

REDIS_URL_ENV = "CCGATE_REDIS_URL"
CONNECT_TIMEOUT_S = 10.0
BODY_TIMEOUT_MS = 30_000  # server.bodyTimeout: a request body making no progress this long: 408
# A family behind one NAT: a dozen devices with Claude Code (a few connections each, parallel
# subagents) and browsers stay far below this; one address holding every slot does not.
MAX_CONNECTIONS_PER_IP = 256


def ms(value: float) -> float:
    """Milliseconds (the files' unit) to seconds."""
    return value / 1000.0


def parse_size(value: int | str) -> int:
    """``"100MB"`` / ``"512k"`` / ``1048576`` -> bytes."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+)\s*([kmg]?)b?\s*", value, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {value!r}")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def _number(node: object, *path: str) -> float:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else 0.0


@dataclass(frozen=True)
class StorageConfig:
    type: str = "file"  # "file" or "redis"
    url: str | None = None
    prefix: str = "ccgate:"
    spool_dir: Path | None = None  # None: a directory under the system temp dir

    @classmethod
    def from_doc(cls, doc: dict) -> "StorageConfig":
        """``CCGATE_REDIS_URL`` selects Redis and overrides the URL."""
        env_url = os.environ.get(REDIS_URL_ENV)
        spool = doc.get("spoolDir")
        return cls(type="redis" if env_url else doc.get("type", cls.type),
                   url=env_url or doc.get("url"), prefix=doc.get("prefix", cls.prefix),
                   spool_dir=Path(spool) if spool else None)


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    token: str | None = field(default=None, repr=False)
    public: bool = False  # True: anyone who reaches the gateway reads every tenant's spend

    @classmethod
    def from_doc(cls, doc: dict) -> "MetricsConfig":
        return cls(enabled=doc.get("enabled", cls.enabled), token=doc.get("token"),
                   public=doc.get("public", False) is True)


@dataclass(frozen=True)
class AdminConfig:
    enabled: bool = True
    path: str = "/admin"
    username: str = "admin"
    password: str = field(default="", repr=False)  # plain, or a werkzeug hash

    @classmethod
    def from_doc(cls, doc: dict) -> "AdminConfig":
        return cls(enabled=doc.get("enabled", cls.enabled), path=doc.get("path", cls.path),
                   username=doc.get("username", cls.username),
                   password=doc.get("password") or cls.password)


@dataclass(frozen=True)
class OpenAIConfig:
    enabled: bool = True
    models: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    default_model: str | None = None
    default_max_tokens: int = 4096  # when a Chat Completions request names no max_tokens

    @classmethod
    def from_doc(cls, doc: dict) -> "OpenAIConfig":
        return cls(enabled=doc.get("enabled", cls.enabled),
                   models=MappingProxyType(dict(doc.get("models", {}))),
                   default_model=doc.get("defaultModel"),
                   default_max_tokens=doc.get("defaultMaxTokens", cls.default_max_tokens))


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    max_file_bytes: int = 100 * 1024 * 1024
    max_files: int = 5
    console: bool = True

    @classmethod
    def from_doc(cls, doc: dict) -> "LoggingConfig":
        return cls(level=str(doc.get("level", cls.level)).lower(),
                   max_file_bytes=parse_size(doc.get("maxFileSize", cls.max_file_bytes)),
                   max_files=doc.get("maxFiles", cls.max_files),
                   console=doc.get("enableConsole", cls.console))


ALERT_EVENTS = ("upstream_down", "upstream_recovered", "tenant_limit_warning",
                "tenant_limit_reached", "upstream_budget_low", "daily_summary")


@dataclass(frozen=True)
class AlertsConfig:
    targets: tuple[dict, ...] = ()  # webhook, telegram, wecom, feishu, dingtalk
    events: tuple[str, ...] = ALERT_EVENTS
    language: str = "en"
    daily_summary_at: str = "09:00"  # in usage.timezone
    gateway_name: str = "CCGate"

    @classmethod
    def from_doc(cls, doc: dict) -> "AlertsConfig":
        return cls(targets=tuple(doc.get("targets", ())), events=tuple(doc.get("events", ALERT_EVENTS)),
                   language=doc.get("language", cls.language),
                   daily_summary_at=doc.get("dailySummaryAt", cls.daily_summary_at),
                   gateway_name=doc.get("gatewayName", cls.gateway_name))


# The spend windows, in the order they are shown: the limits, /usage, the dashboard and the
# console (served to the pages as the body's data-spend-windows) all take their names from here.
SPEND_WINDOWS = ("window5h", "daily", "weekly", "monthly")


@dataclass(frozen=True)
class TenantLimits:
    """A tenant's ``limits``; 0 means no limit."""
    window5h_usd: float = 0.0  # the last 5 hours, sliding
    daily_usd: float = 0.0
    weekly_usd: float = 0.0  # the calendar week from Monday 00:00 in usage.timezone
    monthly_usd: float = 0.0
    rpm: int = 0
    concurrency: int = 0
    cut_streams: bool = False  # end running streams once live spend passes a spend limit
    max_connections: int = 0  # requests and streams open at once in this process (0: no cap)

    @classmethod
    def from_doc(cls, doc: dict | None) -> "TenantLimits":
        doc = doc or {}
        return cls(window5h_usd=_number(doc, "window5h", "maxUSD"),
                   daily_usd=_number(doc, "daily", "maxUSD"),
                   weekly_usd=_number(doc, "weekly", "maxUSD"),
                   monthly_usd=_number(doc, "monthly", "maxUSD"),
                   rpm=int(_number(doc, "rpm")), concurrency=int(_number(doc, "concurrency")),
                   cut_streams=doc.get("cutStreams") is True,
                   max_connections=int(_number(doc, "maxConnections")))

    @property
    def has_spend_limit(self) -> bool:
        return bool(self.window5h_usd or self.daily_usd or self.weekly_usd or self.monthly_usd)

    def as_doc(self) -> dict:
        """The limits that are set, in the files' shape."""
        doc: dict = {}
        if self.window5h_usd:
            doc["window5h"] = {"maxUSD": self.window5h_usd}
        if self.daily_usd:
            doc["daily"] = {"maxUSD": self.daily_usd}
        if self.weekly_usd:
            doc["weekly"] = {"maxUSD": self.weekly_usd}
        if self.monthly_usd:
            doc["monthly"] = {"maxUSD": self.monthly_usd}
        if self.rpm:
            doc["rpm"] = self.rpm
        if self.concurrency:
            doc["concurrency"] = self.concurrency
        if self.cut_streams:
            doc["cutStreams"] = True
        if self.max_connections:
            doc["maxConnections"] = self.max_connections
        return doc


@dataclass(frozen=True)
class UpstreamConfig:
    id: str
    name: str
    url: str  # scheme://host[:port][/prefix], never with a trailing slash
    key: str = field(repr=False)
    weight: int
    enabled: bool
    auth: str
    read_timeout_s: float
    models: tuple[str, ...] | None = None  # wildcard patterns this upstream serves; None = all
    model_map: dict = field(default_factory=dict)  # model renames applied to the forwarded body
    health_check: dict = field(default_factory=dict)
    price_multiplier: float = 1.0  # what it charges relative to list price (upstreamCost)
    priority: int = 0  # lower is preferred: the best tier with a usable upstream takes traffic
    daily_usd: float = 0.0  # upstream-cost limits (0 = none)
    monthly_usd: float = 0.0
    balance_usd: float | None = None  # a prepaid balance, as it was at balance_set_at
    balance_set_at: datetime | None = None

    @cached_property  # the config is frozen: worked out once, not per request
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    def url_problem(self, show_url: bool = True) -> str | None:
        """Why ``url`` is almost certainly wrong, and what to write instead (None when it looks
        fine). ``show_url=False`` for what the public may see (/health): no URL in the text."""
        parts = urlsplit(self.url)
        shown = repr(self.url) if show_url else "the url"
        if "*" in self.url or not parts.hostname or " " in self.url:
            return f"{shown} does not look reachable"
        path = parts.path.rstrip("/")
        for tail in ("/v1/messages", "/v1"):
            if tail in path and (tail != "/v1" or path.endswith("/v1")):
                fix = repr(self.url[:self.url.index(tail)]) if show_url else f"it without {tail}"
                return (f"{shown} ends in {tail!r}, but the gateway adds /v1/messages itself "
                        f"(requests would go to …{tail}/v1/messages): write {fix}")
        return None

    def key_problem(self) -> str | None:
        """Why ``key`` looks like a placeholder rather than a real key."""
        if not self.key or "*" in self.key or self.key.endswith(("replace-me", "your-key-here")):
            return ("looks like a placeholder, not a real key: put the upstream's key here (it is "
                    "not health-checked until then)")
        return None

    @cached_property
    def auth_headers(self) -> dict[str, str]:
        """The credential headers this upstream expects, per its ``auth`` mode (shared: copy it
        to change it)."""
        mode = self.auth
        if mode == "auto":
            mode = "x-api-key" if self.host == "api.anthropic.com" else "both"
        headers = {}
        if mode in ("x-api-key", "both"):
            headers["x-api-key"] = self.key
        if mode in ("bearer", "both"):
            headers["authorization"] = f"Bearer {self.key}"
        return headers


@dataclass(frozen=True)
class TenantConfig:
    id: str
    name: str
    key_hash: str = field(repr=False)  # hex sha256 of the key
    key: str | None = field(repr=False)  # the plain key when the file holds one (only ever shown masked)
    enabled: bool
    allowed_models: tuple[str, ...]
    limits: TenantLimits = TenantLimits()
    # which owned upstream resources the tenant may use: "batches", "files", "skills"
    resources: frozenset[str] = frozenset()
    allow_paths: tuple[str, ...] = ()  # further upstream paths opened by the operator (unowned)
    expires_at: datetime | None = None  # the key stops working at this moment
    model_rewrite: tuple[tuple[str, str], ...] = ()  # ordered (pattern, model) rules
    billing_multiplier: float = 1.0  # applied to the recorded totalCost (list cost × this)


@dataclass(frozen=True)
class LoadBalancerConfig:
    strategy: str = "weighted_round_robin"
    failover: bool = True
    max_attempts: int = 3
    unhealthy_threshold: int = 3
    sticky: bool = True
    sticky_ttl_s: float = 3600.0
    health_check: bool = True
    health_interval_s: float = 30.0
    health_timeout_s: float = 10.0
    health_path: str = "/v1/models"

    @classmethod
    def from_doc(cls, lb: dict) -> "LoadBalancerConfig":
        hc = lb.get("healthCheck", {})
        return cls(
            strategy=lb.get("strategy", cls.strategy),
            failover=lb.get("failoverEnabled", cls.failover),
            max_attempts=lb.get("maxAttempts", cls.max_attempts),
            unhealthy_threshold=lb.get("unhealthyThreshold", cls.unhealthy_threshold),
            sticky=lb.get("stickySessions", cls.sticky),
            sticky_ttl_s=lb.get("stickyTTL", cls.sticky_ttl_s),
            health_check=lb.get("healthCheckEnabled", cls.health_check),
            health_interval_s=hc.get("interval", cls.health_interval_s),
            health_timeout_s=ms(hc.get("timeout", cls.health_timeout_s * 1000)),
            health_path=hc.get("path", cls.health_path),
        )
