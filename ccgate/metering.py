"""The per-request glue between a surface and the usage package: admit, meter, forward."""
from __future__ import annotations

from . import metrics
from .errors import GatewayError
from .gateway import Gateway
from .proxy import Outcome, ProxyRequest, Relay
from .tenants import Tenant
from .usage.limits import LimitExceeded
from .usage.meter import Meter


def forward_metered(gw: Gateway, tenant: Tenant, req: ProxyRequest, *, api: str, request_id: str,
                    requested_model: str | None, record: bool,
                    user_agent: str | None) -> tuple[Relay, Meter]:
    """Admit the request against the tenant's limits, forward it, meter what comes back.

    Raises GatewayError 429 (with ``retry-after``) when a limit is reached: nothing is sent
    upstream then. ``record=False`` still counts the request against rpm and concurrency but
    writes no usage line (free endpoints such as ``count_tokens``).
    """
    try:
        admission = gw.limiter.admit(tenant.id, tenant.limits, gw.clock())
    except LimitExceeded as e:
        metrics.LIMIT_REJECTIONS.labels(tenant.id, e.limit).inc()
        raise GatewayError(429, e.message, headers={"retry-after": str(e.retry_after_s)}) from None
    meter = Meter(store=gw.store if record else None, prices=gw.prices, limiter=gw.limiter,
                  admission=admission, timezone_name=gw.config.usage_timezone,
                  request_id=request_id, tenant_id=tenant.id, model=req.model,
                  requested_model=requested_model, api=api, stream=req.stream,
                  session=req.session, user_agent=user_agent, observers=(metrics.observe_record,))
    try:
        relay = gw.forwarder.forward(req, meter)
    except BaseException:
        meter.finish(Outcome(status=500, upstream=None))
        raise
    return relay, meter
