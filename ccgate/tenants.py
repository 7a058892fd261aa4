"""Tenants: key lookup by hash, model allow-lists, and ``Call``, one tenant request's facts."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .config.load import hash_key
from .config.settings import TenantConfig
from .core.wildcard import PatternSet


class Tenant:
    """A configured tenant with its compiled model allow-list."""

    __slots__ = ("config", "id", "name", "enabled", "allowed", "limits", "resources",
                 "expires_at", "_rewrite", "_rewrite_to", "_paths")

    def __init__(self, config: TenantConfig):
        self.config = config
        self.id = config.id
        self.name = config.name
        self.enabled = config.enabled
        self.allowed = PatternSet(config.allowed_models)
        self.limits = config.limits
        self.resources = config.resources
        self._paths = PatternSet(config.allow_paths)
        self.expires_at = config.expires_at
        self._rewrite = PatternSet([pattern for pattern, _ in config.model_rewrite])
        self._rewrite_to = dict(config.model_rewrite)

    def may_use(self, model: str) -> bool:
        return self.allowed.match(model)

    def opened(self, path: str) -> bool:
        """Whether the operator opened ``path`` for this tenant (``allowPaths``)."""
        return bool(self.config.allow_paths) and self._paths.match(path)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at.timestamp()

    def rewrite(self, model: str) -> str:
        """The model this tenant's ``modelRewrite`` sends instead (first matching rule), or it."""
        pattern = self._rewrite.first(model) if self._rewrite_to else None
        return self._rewrite_to[pattern] if pattern is not None else model


@dataclass(slots=True)
class Call:
    """One tenant request's facts, fixed once its key is checked (``g.call``) and carried to the
    gateway, the meter and the access log. The surface fills in what the body says (the
    requested model, the metering policy) before it hands the call to the gateway, and nothing
    changes it after. Not frozen: a frozen init and a ``dataclasses.replace`` cost 3 µs a
    request, more than all the rest of this object."""
    tenant: Tenant
    surface: str  # "anthropic", "openai" (the record's ``api``) or "usage"
    request_id: str
    user_agent: str | None
    client_ip: str | None
    started: float  # wall clock: the record's timestamp and duration
    requested_model: str | None = None  # as the client named it (before aliases and rewrites)
    record: bool = True  # always write a usage record (token-generating endpoints)
    spend_limits: bool = True  # False for what costs nothing (count_tokens, model lists)


class TenantRegistry:
    """Finds the tenant a presented key belongs to.

    The presented key is hashed and the hash looked up in a dict, so the time taken does not depend
    on how much of a stored key matched; the final compare_digest guards against a hash-table hit on
    a different key (impossible for sha256 in practice, cheap to rule out).
    """

    def __init__(self, tenants: tuple[TenantConfig, ...] | list[TenantConfig]):
        self.tenants = [Tenant(t) for t in tenants]
        self._by_hash = {t.config.key_hash: t for t in self.tenants}
        self.by_id = {t.id: t for t in self.tenants}

    def authenticate(self, key: str | None) -> Tenant | None:
        if not key:
            return None
        digest = hash_key(key)
        tenant = self._by_hash.get(digest)
        if tenant is not None and hmac.compare_digest(tenant.config.key_hash, digest):
            return tenant
        return None


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality whatever the lengths: the digests are compared, not the strings."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                               hashlib.sha256(expected.encode()).digest())


def mask(secret: str | None) -> str:
    """``sk-ab…yz``: at most the first 5 and last 2 characters of a secret, never more."""
    if not secret:
        return ""
    if len(secret) < 12:
        return "…"
    return f"{secret[:5]}…{secret[-2:]}"


def presented_key(headers) -> str | None:
    """The tenant key from ``x-api-key`` or ``Authorization: Bearer …`` (Claude Code sends either)."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None
