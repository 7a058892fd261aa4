"""The admin JSON API behind the dashboard (``admin.path``, default ``/admin``)."""
from __future__ import annotations

import gc
import os
from datetime import date, timedelta

from flask import Blueprint, jsonify, request
from greenlet import greenlet

from . import reports
from ..core.errors import GatewayError
from . import console
from .request import current_gateway, limit_arg
from .admin_auth import auth

bp = Blueprint("admin", __name__)
bp.register_blueprint(console.bp)
MAX_RANGE_DAYS = 366


@auth.login_required
def _logged_in():
    return None


@bp.before_request
def admin_only():
    if not current_gateway().config.admin.enabled:
        raise GatewayError(404, "the admin API is turned off")
    return _logged_in()


@bp.after_request
def no_store(response):
    response.headers["cache-control"] = "no-store"
    return response


def _tenant_arg() -> str | None:
    tenant = request.args.get("tenant") or None
    if tenant is not None and tenant not in current_gateway().store.tenants() and \
            tenant not in current_gateway().tenants.by_id:
        raise GatewayError(404, f"no tenant {tenant!r}")
    return tenant


def _date_arg(name: str, default: date) -> date:
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise GatewayError(400, f"{name} must be a date like 2026-11-26") from None


@bp.get("/api/overview")
def overview():
    return jsonify(reports.overview(current_gateway()))


@bp.get("/api/tenants")
def tenants():
    return jsonify({"tenants": reports.tenants(current_gateway())})


@bp.get("/api/upstreams")
def upstreams():
    return jsonify(reports.upstreams(current_gateway()))


@bp.get("/api/runtime")
def runtime():
    """The process's own vital signs, for soak tests and leak hunting: open descriptors,
    greenlets (counted by walking the heap: this call is slow on purpose-built occasions
    only), resident memory, requests in flight."""
    rss_kb = next((int(line.split()[1]) for line in open("/proc/self/status")
                   if line.startswith("VmRSS:")), 0)
    return jsonify({"pid": os.getpid(), "openFiles": len(os.listdir("/proc/self/fd")),
                    "greenlets": sum(1 for o in gc.get_objects() if isinstance(o, greenlet)),
                    "rssMB": round(rss_kb / 1024, 1), "inFlight": current_gateway().in_flight})


@bp.get("/api/prices")
def prices():
    return jsonify({"prices": reports.prices(current_gateway())})


@bp.get("/api/batches")
def batches():
    """Message batches whose results were not downloaded through the gateway (not billed)."""
    return jsonify({"unmetered": reports.unmetered_batches(current_gateway())})


@bp.get("/api/requests")
def recent_requests():
    limit = limit_arg()
    return jsonify({"requests": reports.requests(current_gateway(), limit, _tenant_arg())})


@bp.get("/api/usage")
def usage():
    gw = current_gateway()
    today = gw.limiter.local_now(gw.clock()).date()
    last = _date_arg("to", today)
    first = _date_arg("from", last - timedelta(days=29))
    if first > last or (last - first).days >= MAX_RANGE_DAYS:
        raise GatewayError(400, f"from must not be after to, and the range at most {MAX_RANGE_DAYS} days")
    return jsonify(reports.usage(gw, first, last, _tenant_arg()))
