"""``GET/POST /usage``: a tenant's own usage, limits and history (the Node CCGate's endpoint)."""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, Response, jsonify, request

from ..core.errors import GatewayError
from ..tenants import presented_key
from ..usage.limits import usd
from ..usage.store import Counters
from ..core.json_object import parse_json_object
from .request import current_gateway, request_body
from .auth import call_of, tenant_for_key

log = logging.getLogger("ccgate")

bp = Blueprint("usage", __name__)

MAX_DAYS = 366


KEY_BODY_MAX = 4096  # the Node body holds a key and a word: a keyless client gets no more


def _key_from_request() -> str | None:
    """The tenant key from the headers (the body is then never read), or the Node body
    ``{"type":"tenant","apiKey":"…"}``, read as any body is (``server.bodyTimeout``) and small."""
    key = presented_key(request.headers)
    if key or request.method != "POST":
        return key
    try:
        body = parse_json_object(request_body(current_gateway(), most=KEY_BODY_MAX))
    except ValueError:
        return None
    return body["apiKey"] if isinstance(body.get("apiKey"), str) else None


def _days() -> int:
    raw = request.args.get("days", "7")
    try:
        days = int(raw)
    except ValueError:
        raise GatewayError(400, f"days must be a whole number from 1 to {MAX_DAYS}") from None
    if not 1 <= days <= MAX_DAYS:
        raise GatewayError(400, f"days must be a whole number from 1 to {MAX_DAYS}")
    return days


@bp.route("/usage", methods=["GET", "POST"])
def usage():
    gw = current_gateway()
    days = _days()
    tenant = call_of(tenant_for_key(_key_from_request())).tenant
    now = gw.clock()
    today = gw.limiter.local_now(now).date()
    history = gw.store.range_totals(tenant.id, today - timedelta(days=days - 1), today)
    today_totals = history[-1][1]
    return jsonify({
        "tenant": {"id": tenant.id, "name": tenant.name},
        "date": today.isoformat(),
        "timezone": gw.config.usage_timezone,
        "today": today_totals.as_dict(operator=False),
        "limits": gw.limiter.limits_view(tenant.id, tenant.limits, now),
        "history": [{"date": d.isoformat(), **Counters.as_dict(t, operator=False)}
                    for d, t in history],
    })


@bp.get("/usage/statusline")
def statusline():
    """One line of plain text for Claude Code's ``statusLine`` setting (tenant key required).
    Whatever goes wrong, the answer is one plain line too (Claude Code shows the body as it is):
    ``CCGate: <what is wrong>``, with the status of the problem."""
    try:
        return Response(_status_line() + "\n", mimetype="text/plain")
    except GatewayError as e:
        return Response(f"CCGate: {e.message}\n", status=e.status, mimetype="text/plain",
                        headers=e.headers)
    except Exception:
        log.exception("status line failed")
        return Response("CCGate: usage is unavailable right now\n", status=503,
                        mimetype="text/plain")


def _status_line() -> str:
    gw = current_gateway()
    tenant = call_of(tenant_for_key(_key_from_request())).tenant
    now = gw.clock()
    view = gw.limiter.limits_view(tenant.id, tenant.limits, now)
    today = gw.store.day_totals(tenant.id, gw.limiter.local_now(now).date()).costUSD
    parts = [tenant.name, f"today {usd(today)}" + (f"/{usd(view['daily']['maxUSD'])}"
                                                   if "daily" in view else "")]
    for name, label in (("window5h", "5h"), ("weekly", "week"), ("monthly", "month")):
        if name in view:
            part = f"{label} {usd(view[name]['usedUSD'])}/{usd(view[name]['maxUSD'])}"
            if name == "window5h" and view[name]["resetsAt"]:
                part += f" (resets {view[name]['resetsAt'][11:16]})"
            parts.append(part)
    return " · ".join(parts)
