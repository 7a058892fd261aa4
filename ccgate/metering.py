"""The per-request glue between a surface and the usage package: admit, meter, forward."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from . import metrics
from .errors import GatewayError
from .gateway import Gateway
from .proxy import Outcome, ProxyRequest, Relay
from .tenants import Tenant
from .usage.limits import Admission, LimitExceeded, RecordingUnavailable
from .usage.meter import Meter


def admit(gw: Gateway, tenant: Tenant, spend_limits: bool = True) -> Admission:
    """Count a request in against the tenant's limits, or raise GatewayError 429."""
    try:
        return gw.limiter.admit(tenant.id, tenant.limits, gw.clock(), spend=spend_limits)
    except LimitExceeded as e:
        metrics.LIMIT_REJECTIONS.labels(tenant.id, e.limit).inc()
        raise GatewayError(429, e.message, headers={"retry-after": str(e.retry_after_s)}) from None
    except RecordingUnavailable:
        raise GatewayError(503, "usage cannot be recorded right now, so requests with a spending "
                                "limit are paused; try again in a minute (the operator sees why "
                                "on /health)", error_type="overloaded_error",
                           headers={"retry-after": "30"}) from None


@contextmanager
def admitted(gw: Gateway, tenant: Tenant) -> Iterator[Admission]:
    """A free request the gateway answers itself (model lists): rpm and concurrency only."""
    admission = admit(gw, tenant, spend_limits=False)
    try:
        yield admission
    finally:
        gw.limiter.release(admission)


def forward_metered(gw: Gateway, tenant: Tenant, req: ProxyRequest, *, api: str, request_id: str,
                    requested_model: str | None, record: bool, spend_limits: bool = True,
                    user_agent: str | None) -> tuple[Relay, Meter]:
    """Admit the request against the tenant's limits, forward it, meter what comes back.

    Every tenant request passes here, whatever its path. Raises GatewayError 429 (with
    ``retry-after``) when a limit is reached: nothing is sent upstream then. ``spend_limits=False``
    (free endpoints: ``count_tokens``, model lists) checks only rpm and concurrency.
    ``record=False`` writes a usage line only if the response turns out to be a generated message.
    """
    admission = admit(gw, tenant, spend_limits)
    meter = Meter(store=gw.store, always_record=record, prices=gw.prices, limiter=gw.limiter,
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
