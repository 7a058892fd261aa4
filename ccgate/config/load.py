"""Read and validate the JSON config files into typed, immutable objects.

Files (all in one config directory): ``server.json``, ``upstreams.json``, ``tenants.json`` and the
optional ``pricing.json``. They are the Node CCGate's formats; its files load unchanged. Durations in
the files are milliseconds, as in the Node project. Every problem is collected and reported at once
as ``file: json.path: message``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema

from ..core.client_ip import parse_networks
from .env import expand_env, holds_env_value, json_path
from .items import (PRICING_FILE, SERVER_FILE, TENANTS_FILE, UPSTREAMS_FILE, hash_key,
                    tenants_of, upstreams_of)
from .problems import default_password, model_warnings, short_keys, upstream_problems
from .settings import (BODY_TIMEOUT_MS, MAX_CONNECTIONS_PER_IP, REDIS_URL_ENV, AdminConfig, AlertsConfig, LoadBalancerConfig, LoggingConfig,
                       MetricsConfig, OpenAIConfig, StorageConfig, TenantConfig,
                       UpstreamConfig, ms)

DEFAULT_READ_TIMEOUT_MS = 600_000
SHORT_TIMEOUT_WARNING_MS = 120_000

REQUIRED_FILES = (SERVER_FILE, UPSTREAMS_FILE, TENANTS_FILE)
SECRET_FIELDS = frozenset({"key", "keyHash", "password", "token", "secret", "botToken"})


class ConfigError(Exception):
    """The config cannot be used; ``lines`` holds every problem as ``file: path: message``."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class Config:
    config_dir: Path
    host: str
    port: int
    max_body_bytes: int
    body_timeout_s: float
    max_connections: int  # 0: sized from the descriptor limit at start (app.py)
    max_connections_per_ip: int  # open connections of one client address (0: no cap)
    trusted_proxies: tuple  # networks whose X-Forwarded-For / Forwarded are believed
    read_timeout_s: float
    usage_timezone: str
    cors_origin: str
    storage: StorageConfig
    metrics: MetricsConfig
    shutdown_grace_s: float
    workers: int | str  # server.workers: processes serving the port, or "auto"
    admin: AdminConfig
    openai: OpenAIConfig
    logging: LoggingConfig
    alerts: AlertsConfig
    upstreams: tuple[UpstreamConfig, ...]
    load_balancer: LoadBalancerConfig
    tenants: tuple[TenantConfig, ...]
    pricing: dict | None
    warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # almost certainly wrong, yet not fatal (validate fails on them)


def _schema(name: str) -> dict:
    return json.loads(resources.files("ccgate.config.schemas").joinpath(f"{name}.schema.json").read_text())


_VALIDATORS = {
    f: jsonschema.Draft202012Validator(_schema(f.removesuffix(".json")))
    for f in (SERVER_FILE, UPSTREAMS_FILE, TENANTS_FILE, PRICING_FILE)
}


def _unknown_keys(instance: Any, schema: dict, path: list) -> list[str]:
    """Paths of object keys the schema does not declare (declared maps are not walked into)."""
    found = []
    if isinstance(instance, dict) and "properties" in schema:
        for key, value in instance.items():
            sub = schema["properties"].get(key)
            if sub is None:
                found.append(json_path(path + [key]))
            else:
                found += _unknown_keys(value, sub, path + [key])
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(instance):
            found += _unknown_keys(item, schema["items"], path + [i])
    return found


def read_json_file(path: Path, errors: list[str]) -> Any:
    """Parse one file, adding a ``file: $: message`` line to ``errors`` when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        errors.append(f"{path.name}: $: file not found in {path.parent.resolve()} (run "
                      f"'python app.py' once to create the config there, or set CCGATE_CONFIG_DIR "
                      f"to the directory that has it)")
    except UnicodeDecodeError as e:
        errors.append(f"{path.name}: $: not UTF-8 text ({e.reason})")
    except json.JSONDecodeError as e:
        errors.append(f"{path.name}: $: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}")
    except OSError as e:
        errors.append(f"{path.name}: $: cannot read ({e.strerror})")
    return None


def _schema_message(err: jsonschema.ValidationError, variable: str | None) -> str:
    """jsonschema's message, or, where the part of the document it is about holds a value from
    the environment, one that names the variable and shows no value."""
    if variable is None:
        return err.message
    rule = (f"{err.validator} {err.validator_value!r}"
            if not isinstance(err.validator_value, (list, dict)) else str(err.validator))
    if variable == "a secret":
        return f"not valid here ({rule}); the value is not shown"
    return f"not valid here ({rule}); it holds the value of ${{{variable}}}, not shown"


def validate_document(name: str, doc: Any, errors: list[str], warnings: list[str],
                      expanded: dict[str, str] | None = None) -> bool:
    """Check ``doc`` against the schema of file ``name``; True when it is valid. ``expanded``:
    paths whose value came from the environment (never echoed)."""
    validator = _VALIDATORS[name]
    problems = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    for err in problems:
        where = json_path(list(err.absolute_path))
        variable = holds_env_value(where, expanded or {})
        if variable is None and where.rsplit(".", 1)[-1] in SECRET_FIELDS:
            variable = "a secret"  # a key or password is never shown, not even a wrong one
        errors.append(f"{name}: {where}: {_schema_message(err, variable)}")
    if not problems:
        warnings += [f"{name}: {p}: unknown key, ignored" for p in _unknown_keys(doc, validator.schema, [])]
    return not problems


def _duplicate_ids(items: list[dict], file: str, name: str, errors: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item["id"] in seen:
            errors.append(f"{file}: {name}[{i}].id: duplicate id {item['id']!r} "
                          f"(also {name}[{seen[item['id']]}])")
        seen.setdefault(item["id"], i)


def _cross_file_rules(upstreams_doc: dict, tenants_doc: dict, errors: list[str]) -> None:
    _duplicate_ids(upstreams_doc["upstreams"], UPSTREAMS_FILE, "upstreams", errors)
    _duplicate_ids(tenants_doc["tenants"], TENANTS_FILE, "tenants", errors)
    seen_hashes: dict[str, int] = {}
    for i, t in enumerate(tenants_doc["tenants"]):
        if "key" not in t and "keyHash" not in t:
            errors.append(f"{TENANTS_FILE}: tenants[{i}]: needs a 'key' or a 'keyHash'")
            continue
        if "key" in t and "keyHash" in t and hash_key(t["key"]) != t["keyHash"][7:].lower():
            errors.append(f"{TENANTS_FILE}: tenants[{i}].keyHash: does not match 'key'")
        h = hash_key(t["key"]) if "key" in t else t["keyHash"][7:].lower()
        if h in seen_hashes:
            errors.append(f"{TENANTS_FILE}: tenants[{i}].key: same key as tenants[{seen_hashes[h]}]")
        seen_hashes.setdefault(h, i)


def _read_documents(config_dir: Path, warnings: list[str], overrides: dict[str, Any],
                    expanded: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Every file parsed and validated (schemas, cross-file rules), or ConfigError. A document in
    ``overrides`` is taken instead of its file (a console edit checked before it is written)."""
    if not any((config_dir / name).exists() for name in REQUIRED_FILES):
        raise ConfigError([f"{config_dir.resolve()}: no config here ({', '.join(REQUIRED_FILES)}):"
                           f" run 'python app.py' once to create it, or set CCGATE_CONFIG_DIR to "
                           f"the directory that has it"])
    errors: list[str] = []
    docs = {}
    for name in REQUIRED_FILES + (PRICING_FILE,):
        path = config_dir / name
        if name == PRICING_FILE and not path.exists() and name not in overrides:
            docs[name] = None
            continue
        doc = overrides[name] if name in overrides else read_json_file(path, errors)
        if doc is not None:
            doc = expand_env(doc, name, errors, expanded.setdefault(name, {}))
        if doc is not None and validate_document(name, doc, errors, warnings, expanded[name]):
            docs[name] = doc
    if errors:
        raise ConfigError(errors)
    _cross_file_rules(docs[UPSTREAMS_FILE], docs[TENANTS_FILE], errors)
    if errors:
        raise ConfigError(errors)
    return docs


def _check_timezone(timezone: str) -> None:
    try:
        ZoneInfo(timezone)
    except Exception:  # ZoneInfoNotFoundError, ValueError for malformed keys
        raise ConfigError([f"{SERVER_FILE}: usage.timezone: unknown time zone {timezone!r}"]) from None


def _trusted(entries: list[str]) -> tuple:
    try:
        return parse_networks(entries)
    except ValueError as e:
        raise ConfigError([f"{SERVER_FILE}: server.trustedProxies: {e} (write addresses or "
                           f"CIDRs, e.g. [\"127.0.0.1\", \"10.0.0.0/8\"])"]) from None


def _readable_by_others(config_dir: Path) -> list[str]:
    """The secret-holding files other users of the machine may read."""
    out = []
    for name in REQUIRED_FILES:
        try:
            mode = os.stat(config_dir / name).st_mode & 0o777
        except OSError:
            continue
        if mode & 0o077:
            out.append(f"{name} is readable by other users of this machine (mode {mode:o}) and "
                       f"holds keys: chmod 600 {config_dir / name}")
    return out


def _storage(server: dict) -> StorageConfig:
    storage = StorageConfig.from_doc(server.get("storage", {}))
    if storage.type == "redis" and not storage.url:
        raise ConfigError([f"{SERVER_FILE}: storage.url: a redis:// URL is needed for storage "
                           f"type redis (or set {REDIS_URL_ENV})"])
    return storage


def _short_timeouts(proxy_timeout_ms: int, upstream_docs: list[dict]) -> list[str]:
    return [f"{where} is {timeout_ms} ms: long non-streaming answers from thinking models will "
            f"be cut off (600000 recommended)"
            for where, timeout_ms in [("proxy.timeout", proxy_timeout_ms)] + [
                (f"upstream {u['id']!r} timeout", u["timeout"]) for u in upstream_docs
                if "timeout" in u]
            if timeout_ms < SHORT_TIMEOUT_WARNING_MS]


def load_config(config_dir: str | os.PathLike, overrides: dict[str, Any] | None = None) -> Config:
    """Read, validate and type the config in ``config_dir``; raise ConfigError listing every
    problem. ``overrides`` maps a file name to the document to use instead of that file."""
    config_dir = Path(config_dir)
    warnings: list[str] = []
    expanded: dict[str, dict[str, str]] = {}  # file -> json path -> variable
    docs = _read_documents(config_dir, warnings, overrides or {}, expanded)
    server = docs[SERVER_FILE]
    srv = server.get("server", {})
    proxy_timeout_ms = server.get("proxy", {}).get("timeout", DEFAULT_READ_TIMEOUT_MS)
    timezone = server.get("usage", {}).get("timezone", "UTC")
    _check_timezone(timezone)
    upstreams, errors = upstreams_of(docs[UPSTREAMS_FILE]["upstreams"], proxy_timeout_ms, timezone)
    tenants, tenant_errors = tenants_of(docs[TENANTS_FILE]["tenants"], timezone)
    if errors or tenant_errors:
        raise ConfigError(errors + tenant_errors)
    openai = OpenAIConfig.from_doc(server.get("openai", {}))
    warnings += (_short_timeouts(proxy_timeout_ms, docs[UPSTREAMS_FILE]["upstreams"])
                 + _readable_by_others(config_dir) + model_warnings(
                     openai, tenants, docs[PRICING_FILE], date.today()))
    admin = AdminConfig.from_doc(server.get("admin", {}))
    warnings += default_password(admin)
    return Config(
        config_dir=config_dir,
        host=srv.get("host", "0.0.0.0"),
        port=srv.get("port", 3000),
        max_body_bytes=int(srv.get("maxBodyMB", 32) * 1024 * 1024),
        body_timeout_s=ms(srv.get("bodyTimeout", BODY_TIMEOUT_MS)),
        max_connections=srv.get("maxConnections", 0),
        max_connections_per_ip=srv.get("maxConnectionsPerIP", MAX_CONNECTIONS_PER_IP),
        trusted_proxies=_trusted(srv.get("trustedProxies", [])),
        read_timeout_s=ms(proxy_timeout_ms),
        usage_timezone=timezone,
        cors_origin=server.get("cors", {}).get("allowOrigin", "*"),
        storage=_storage(server),
        metrics=MetricsConfig.from_doc(server.get("metrics", {})),
        shutdown_grace_s=float(srv.get("shutdownGrace", 30)), workers=srv.get("workers", 1),
        admin=admin,
        openai=openai,
        logging=LoggingConfig.from_doc(server.get("logging", {})),
        alerts=AlertsConfig.from_doc(server.get("alerts", {})),
        upstreams=upstreams,
        load_balancer=LoadBalancerConfig.from_doc(docs[UPSTREAMS_FILE].get("loadBalancer", {})),
        tenants=tenants,
        pricing=docs[PRICING_FILE],
        warnings=tuple(warnings),
        problems=tuple(upstream_problems(upstreams, expanded.get(UPSTREAMS_FILE, {}))
                       + short_keys(tenants)),
    )
