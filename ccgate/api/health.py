"""``GET /health``: liveness and per-upstream state, without URLs or keys."""
from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, redirect, request

from ..core.version import VERSION
from ..ops.logs import log_problem
from .request import current_gateway

bp = Blueprint("health", __name__)


@bp.route("/", methods=["GET"])
def root():
    """A newcomer opening the gateway's address lands on the dashboard (or the tenant page);
    a ``HEAD`` (Claude Code's connectivity check of a base URL) gets 200, never a redirect."""
    if request.method == "HEAD":
        return Response(status=200)
    return redirect("/dashboard" if current_gateway().config.admin.enabled else "/dashboard/me")


@bp.route("/anthropic", methods=["HEAD"])
@bp.route("/anthropic/", methods=["HEAD"])
@bp.route("/api/hello", methods=["HEAD"])
def connectivity_probe():
    """Claude Code checks that its base URL answers: 200, no body, no key, nothing upstream."""
    return Response(status=200)


@bp.get("/health")
def health():
    gw = current_gateway()
    upstreams = gw.pool.snapshot()
    enabled = [u for u in upstreams if u["enabled"]]
    healthy = [u for u in enabled if u["healthy"]]
    problem = gw.storage_problem()
    warning = gw.storage_warning()
    log_trouble = log_problem()
    config_problem = gw.watcher.problem
    if not healthy:
        status = "down"
    elif len(healthy) < len(enabled) or problem or log_trouble or config_problem:
        status = "degraded"
    else:
        status = "ok"
    body = {
        "status": status,
        "version": VERSION,
        "uptime": round(time.time() - gw.started, 1),
        "upstreams": upstreams,
        "storage": {"type": gw.config.storage.type, "ok": problem is None,
                    **({"problem": problem} if problem else {}),
                    **({"warning": warning} if warning else {})},
        "logs": {"ok": log_trouble is None, **({"problem": log_trouble} if log_trouble else {})},
    }
    if config_problem:
        # /health is public: what is wrong is on the dashboard and in error.log, not here
        body["configProblem"] = ("a change to the config files was rejected, so the previous "
                                 "config still runs; the dashboard and error.log say why")
    return jsonify(body), 503 if status == "down" else 200
