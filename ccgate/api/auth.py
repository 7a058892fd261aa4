"""Who is calling: tenant keys, throttled guessing, model allow-lists."""
from __future__ import annotations

import time
from functools import wraps

from flask import g, request

from ..core.errors import GatewayError
from ..gateway import Gateway
from ..http.server import AUTHENTICATED_KEY
from ..tenants import Call, Tenant, presented_key
from .request import current_gateway


def tenant_for_key(key: str | None, gw: Gateway | None = None) -> Tenant:
    """The tenant owning ``key``; else 401, or 429 for an address that sent many bad keys.

    An address that sent 30 bad keys within a minute is blocked for a minute, and each bad key
    it sends meanwhile extends the block. While blocked, a valid key is served only if it was
    served from that address before the block (family members behind one NAT keep working); a
    key guessed right during the block gets the same 429 as a wrong one, so guessing learns
    nothing there.
    """
    gw = gw or current_gateway()
    tenant = gw.tenants.authenticate(key)
    address = request.remote_addr or "?"
    throttle = gw.key_throttle
    wait = throttle.blocked_for(address)
    if tenant is not None and (not wait or throttle.vouched(address, tenant.id)):
        if not wait:
            throttle.vouch(address, tenant.id)
        return tenant
    if wait:
        if tenant is None:
            throttle.failed(address)
        raise GatewayError(429, "too many invalid API keys from this address; try again later",
                           headers={"retry-after": str(int(wait) + 1)})
    throttle.failed(address)
    raise GatewayError(401, "invalid or missing API key: send your CCGate tenant key in "
                            "x-api-key or Authorization: Bearer")


def authenticate(gw: Gateway, headers) -> Tenant:
    """The calling tenant of an API request, or a 401/403/429 GatewayError."""
    tenant = tenant_for_key(presented_key(headers), gw)
    if not tenant.enabled:
        raise GatewayError(403, "this API key is disabled")
    if tenant.expired(gw.clock()):
        raise GatewayError(403, f"this key expired on {tenant.expires_at.isoformat()}; ask the "
                                f"operator for a new key or a later expiresAt")
    return tenant


def call_of(tenant: Tenant) -> Call:
    """The ``Call`` of this request by ``tenant`` (``g.call``)."""
    ctx, req = g._get_current_object(), request._get_current_object()
    req.environ[AUTHENTICATED_KEY] = True  # the connection may stay idle the usual time
    ctx.call = Call(tenant, req.blueprint or "", ctx.request_id,
                    req.environ.get("HTTP_USER_AGENT"), req.remote_addr, time.time())
    return ctx.call


def tenant_required(view):
    """Views of the API surfaces: the caller is ``g.call`` (401/403/429 otherwise)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        call_of(authenticate(g.gateway, request.headers))
        return view(*args, **kwargs)
    return wrapped


def check_models(tenant: Tenant, models: list[str]) -> None:
    """403 unless the tenant may use every model named."""
    for model in models:
        if not tenant.may_use(model):
            raise GatewayError(403, f"model {model!r} is not allowed for this key "
                                    f"(allowed: {', '.join(tenant.allowed.patterns) or 'none'})")
