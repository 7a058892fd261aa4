"""Which headers pass each way between a client and an upstream (pure)."""
from __future__ import annotations

from typing import Iterable

from ..core.errors import ANTHROPIC_VERSION
from ..core.redact import replace_secrets
from ..config.settings import UpstreamConfig

# Request headers never forwarded: hop-by-hop, the client's credentials and identity (addresses
# included), and what the HTTP client recomputes.
DROP_REQUEST_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
    "accept-encoding", "x-api-key", "authorization", "cookie", "forwarded", "x-real-ip",
    "x-ccgate-session", "via", "cf-connecting-ip", "true-client-ip", "x-client-ip",
    "x-cluster-client-ip", "x-envoy-external-address", "x-original-forwarded-for",
    # what would make a mirror's own proxy read another method or path than the one checked
    "x-http-method-override", "x-http-method", "x-method-override", "x-original-url",
    "x-rewrite-url", "x-original-method",
})
# Response headers never passed on: hop-by-hop, cookies, and what fingerprints the mirror.
DROP_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "set-cookie", "server", "x-powered-by", "via",
})


def to_upstream(client_headers: Iterable[tuple[str, str]], upstream: UpstreamConfig) -> dict:
    """Headers for the upstream: the client's, minus what must not pass, plus the upstream's key."""
    out, named = {}, ()
    for name, value in client_headers:
        lower = name.lower()
        if lower == "connection":
            # Headers the client names in Connection are hop-by-hop too (RFC 9110 §7.6.1).
            named = tuple(n.strip().lower() for n in value.split(","))
        if lower in DROP_REQUEST_HEADERS or lower.startswith("x-forwarded-"):
            continue
        out[lower] = value
    for name in named:
        if name not in ("anthropic-version", "anthropic-beta", "content-type"):
            out.pop(name, None)
    out.setdefault("anthropic-version", ANTHROPIC_VERSION)
    out["accept-encoding"] = "identity"
    out.update(upstream.auth_headers)
    return out


def secrets_of(upstream: UpstreamConfig, error: bool) -> tuple[str, ...]:
    """What an upstream's answers must not show a tenant: its key and URL, and in errors its host.

    The host is left in successful bodies: a model may legitimately write ``api.anthropic.com``.
    """
    return (upstream.key, upstream.url) + ((upstream.host,) if error else ())


def to_client(upstream_headers, decoded: bool, secrets: tuple[str, ...]) -> list[tuple[str, str]]:
    """Response headers for the client, cleaned of the upstream's secrets; length and encoding
    go when the body was decoded."""
    out = []
    for name, value in upstream_headers.items():
        lower = name.lower()
        if lower in DROP_RESPONSE_HEADERS:
            continue
        if decoded and lower in ("content-encoding", "content-length"):
            continue
        out.append((name, replace_secrets(value, secrets)))
    return out
