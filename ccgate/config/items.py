"""Config documents (validated JSON) typed into the frozen settings the gateway runs on."""
from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .settings import TenantConfig, TenantLimits, UpstreamConfig, ms

SERVER_FILE, UPSTREAMS_FILE, TENANTS_FILE, PRICING_FILE = (
    "server.json", "upstreams.json", "tenants.json", "pricing.json")
# tenants.json setting that lets a tenant use each owned upstream resource
RESOURCE_SETTINGS = {"files": "allowFiles", "skills": "allowSkills", "batches": "allowBatches"}


def hash_key(key: str) -> str:
    """Hex sha256 of a tenant key, the form keys are looked up and stored in."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def upstream_config(doc: dict, default_timeout_ms: int, timezone: str = "UTC") -> UpstreamConfig:
    """One validated ``upstreams.json`` entry, typed."""
    return UpstreamConfig(
        id=doc["id"],
        name=doc.get("name") or doc["id"],
        url=doc["url"].rstrip("/"),
        key=doc.get("key", ""),
        weight=doc.get("weight", 1),
        enabled=doc.get("enabled", True),
        auth=doc.get("auth", "auto"),
        read_timeout_s=ms(doc.get("timeout", default_timeout_ms)),
        models=tuple(doc["models"]) if doc.get("models") else None,
        model_map=doc.get("modelMap", {}),
        health_check=doc.get("healthCheck", {}),
        price_multiplier=float(doc.get("priceMultiplier", 1)),
        priority=doc.get("priority", 0),
        daily_usd=float(doc.get("limits", {}).get("daily", {}).get("maxUSD", 0)),
        monthly_usd=float(doc.get("limits", {}).get("monthly", {}).get("maxUSD", 0)),
        balance_usd=float(doc["balanceUSD"]) if "balanceUSD" in doc else None,
        balance_set_at=parse_moment(doc["balanceSetAt"], timezone) if "balanceSetAt" in doc else None,
    )


def upstreams_of(docs: list[dict], timeout_ms: int,
                 timezone: str) -> tuple[tuple[UpstreamConfig, ...], list[str]]:
    """Every upstream typed, and a ``file: path: message`` line for each that cannot be."""
    out, errors = [], []
    for i, doc in enumerate(docs):
        try:
            out.append(upstream_config(doc, timeout_ms, timezone))
        except ValueError:
            errors.append(f"{UPSTREAMS_FILE}: upstreams[{i}].balanceSetAt: not a real date-time "
                          f"(write 2026-11-27T10:00:00+08:00)")
    return tuple(out), errors


def tenants_of(docs: list[dict], timezone: str) -> tuple[tuple[TenantConfig, ...], list[str]]:
    """Every tenant typed, and a ``file: path: message`` line for each that cannot be."""
    out, errors = [], []
    for i, doc in enumerate(docs):
        try:
            out.append(tenant_config(doc, timezone))
        except ValueError:
            errors.append(f"{TENANTS_FILE}: tenants[{i}].expiresAt: not a real date or date-time "
                          f"(write 2026-12-31 or 2026-12-31T18:00:00+08:00)")
    return tuple(out), errors


def tenant_config(doc: dict, timezone: str) -> TenantConfig:
    key = doc.get("key")
    return TenantConfig(
        id=doc["id"],
        name=doc.get("name") or doc["id"],
        key_hash=hash_key(key) if key is not None else doc["keyHash"][7:].lower(),
        key=key,
        enabled=doc.get("enabled", True),
        allowed_models=tuple(doc.get("allowedModels", ["*"])),
        limits=TenantLimits.from_doc(doc.get("limits")),
        resources=frozenset(kind for kind, setting in RESOURCE_SETTINGS.items()
                            if doc.get(setting) is True),
        allow_paths=tuple(doc.get("allowPaths", ())),
        expires_at=parse_expiry(doc["expiresAt"], timezone) if "expiresAt" in doc else None,
        model_rewrite=tuple((doc.get("modelRewrite") or {}).items()),
        billing_multiplier=float(doc.get("billingMultiplier", 1)),
    )


def parse_expiry(value: str, timezone: str) -> datetime:
    """``expiresAt``: a date-time (naive ones in ``usage.timezone``), or a date, which means the
    key works through that whole day and stops at the next midnight."""
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value) + timedelta(days=1), time(),
                                ZoneInfo(timezone))
    return parse_moment(value, timezone)


def parse_moment(value: str, timezone: str) -> datetime:
    """A date-time from the files (naive ones in ``usage.timezone``; a date is its midnight)."""
    zone = ZoneInfo(timezone)
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time(), zone)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)
