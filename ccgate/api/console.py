"""The operator console's write API, nested in the admin blueprint (same login, same prefix).

Each write edits a config file through ``ConfigFiles`` (checked, atomic, ``.bak`` kept, hand edits
never clobbered), is applied at once, and leaves one line in the audit log. Browsers send basic
auth by themselves, so writes also need a same-origin ``Origin``/``Referer`` when one is sent,
a JSON body, and the ``X-CCGate-Admin: 1`` header a cross-site form cannot send.
"""
from __future__ import annotations

from typing import Any, Callable
from urllib.parse import urlsplit

import gevent
from flask import Blueprint, Response, jsonify, request

from . import reports
from ..alerts.events import trial_alert
from ..ops.audit import AuditLog
from ..config.first_run import new_tenant_key
from ..config.load import TENANTS_FILE, UPSTREAMS_FILE, hash_key, read_json_file, validate_document
from ..config.items import upstream_config
from ..config.edits import (EditRefused, add_tenant, add_upstream, delete_item, patch_tenant,
                            patch_upstream, public_tenant, public_upstream, set_tenant_key)
from ..config.files import ConfigFiles, EditInvalid, iso_now
from ..core.errors import GatewayError
from ..core.json_object import parse_json_object
from ..upstreams.tester import try_upstream
from .request import current_gateway, limit_arg, request_body
from .admin_auth import auth

bp = Blueprint("console", __name__)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
ADMIN_HEADER = "X-CCGate-Admin"


@bp.before_request
def refuse_cross_site_writes():
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and urlsplit(origin).netloc != request.host:
        raise GatewayError(403, "writes are only accepted from this gateway's own dashboard "
                                "(the Origin is another site)")
    has_body = request.content_length or request.headers.get("transfer-encoding")
    if has_body and request.mimetype != "application/json":
        raise GatewayError(415, "send the change as JSON (content-type: application/json)")
    if request.headers.get(ADMIN_HEADER) != "1":
        raise GatewayError(403, f"send the header {ADMIN_HEADER}: 1 with writes (the dashboard "
                                f"does; it keeps cross-site forms out)")


def _body() -> dict:
    if not request.content_length and not request.headers.get("transfer-encoding"):
        return {}
    try:
        return parse_json_object(request_body(current_gateway()), unique_keys=True)
    except ValueError as e:
        raise GatewayError(400, str(e)) from None


def _audit() -> AuditLog:
    return AuditLog(current_gateway().data_dir / "logs" / "audit.log")


def _edit(name: str, change: Callable[[Any], tuple[Any, list[str]]], action: str,
          target: str) -> tuple[Any, list[str]]:
    """Apply a change to config file ``name``, take the new config now, and audit it: what
    ``change`` returned, and the config's warnings."""
    gw = current_gateway()
    try:
        (result, changed), config = ConfigFiles(gw.config.config_dir).edit(name, change)
    except EditRefused as e:
        raise GatewayError(e.status, e.message) from None
    except EditInvalid as e:
        raise GatewayError(400, "not saved: the config would not load with this change (see "
                                "problems)", extra={"problems": e.problems}) from None
    gw.watcher.check(force=True)
    _audit().write(time=iso_now(), user=auth.current_user() or "?",
                   ip=request.remote_addr or "?", action=action, target=target, changed=changed)
    return result, list(config.problems)


def _answer(payload: dict, warnings: list[str], status: int = 200) -> tuple[Response, int]:
    return jsonify({**payload, "warnings": warnings}), status


# -- what is configured ----------------------------------------------------------------------------
@bp.get("/api/config")
def configured():
    """Tenants and upstreams as written in the files (keys masked), for the edit forms."""
    gw, errors = current_gateway(), []
    tenants = read_json_file(gw.config.config_dir / TENANTS_FILE, errors) or {}
    upstreams = read_json_file(gw.config.config_dir / UPSTREAMS_FILE, errors) or {}
    return jsonify({"tenants": [public_tenant(t) for t in tenants.get("tenants", [])],
                    "upstreams": [public_upstream(u) for u in upstreams.get("upstreams", [])],
                    "problems": errors})


# -- tenants ---------------------------------------------------------------------------------------
@bp.post("/api/tenants")
def create_tenant():
    fields, key = _body(), new_tenant_key()
    tenant, warnings = _edit(TENANTS_FILE, lambda doc: (
        add_tenant(doc, fields, f"sha256:{hash_key(key)}", iso_now()), sorted(fields)),
        "tenant.create", str(fields.get("id")))
    return _answer({"tenant": public_tenant(tenant), "key": key}, warnings, 201)


@bp.patch("/api/tenants/<tenant_id>")
def change_tenant(tenant_id: str):
    fields = _body()
    tenant, warnings = _edit(TENANTS_FILE, lambda doc: patch_tenant(doc, tenant_id, fields,
                                                                      iso_now()),
                             "tenant.update", tenant_id)
    return _answer({"tenant": public_tenant(tenant)}, warnings)


@bp.post("/api/tenants/<tenant_id>/rotate-key")
def rotate_key(tenant_id: str):
    key = new_tenant_key()
    _, warnings = _edit(TENANTS_FILE, lambda doc: (
        set_tenant_key(doc, tenant_id, f"sha256:{hash_key(key)}", iso_now()), ["keyHash"]),
        "tenant.rotate-key", tenant_id)
    return _answer({"key": key}, warnings)


@bp.delete("/api/tenants/<tenant_id>")
def remove_tenant(tenant_id: str):
    _edit(TENANTS_FILE, lambda doc: (delete_item(doc, "tenants", tenant_id), []),
          "tenant.delete", tenant_id)
    return Response(status=204)


# -- upstreams -------------------------------------------------------------------------------------
@bp.post("/api/upstreams")
def create_upstream():
    fields = _body()
    upstream, warnings = _edit(UPSTREAMS_FILE, lambda doc: (
        add_upstream(doc, fields, iso_now()), sorted(fields)),
        "upstream.create", str(fields.get("id")))
    return _answer({"upstream": public_upstream(upstream)}, warnings, 201)


@bp.patch("/api/upstreams/<upstream_id>")
def change_upstream(upstream_id: str):
    fields = _body()
    upstream, warnings = _edit(UPSTREAMS_FILE, lambda doc: patch_upstream(
        doc, upstream_id, fields, iso_now()), "upstream.update", upstream_id)
    return _answer({"upstream": public_upstream(upstream)}, warnings)


@bp.delete("/api/upstreams/<upstream_id>")
def remove_upstream(upstream_id: str):
    _edit(UPSTREAMS_FILE, lambda doc: (delete_item(doc, "upstreams", upstream_id), []),
          "upstream.delete", upstream_id)
    return Response(status=204)


@bp.post("/api/upstreams/<upstream_id>/test")
def test_saved_upstream(upstream_id: str):
    gw = current_gateway()
    state = gw.pool.by_id.get(upstream_id)
    if state is None:
        raise GatewayError(404, f"no upstream {upstream_id!r}")
    result = try_upstream(state.config, gw.config.load_balancer.health_path,
                          _body().get("model"))
    gw.pool.probe_result(state, result["probe"]["ok"], result["probe"]["reason"])
    return jsonify(result)


@bp.post("/api/upstreams/test")
def test_unsaved_upstream():
    """Try ``{url, key, auth, models?, modelMap?, model?}`` before saving it."""
    fields = _body()
    model = fields.pop("model", None)
    doc = {"upstreams": [{"id": "unsaved", **fields}]}
    try:
        add_upstream({"upstreams": []}, {"id": "unsaved", **fields}, iso_now())
    except EditRefused as e:
        raise GatewayError(e.status, e.message) from None
    errors: list[str] = []
    if not validate_document(UPSTREAMS_FILE, doc, errors, []):
        raise GatewayError(400, "not tested: the upstream is not valid (see problems)",
                           extra={"problems": errors})
    config = upstream_config(doc["upstreams"][0], 30_000)
    return jsonify(try_upstream(config, current_gateway().config.load_balancer.health_path,
                                model))


@bp.post("/api/alerts/test")
def test_alerts():
    """A test alert to every configured target, now: what each answered."""
    sender = current_gateway().watchdog.alerts
    if not sender.config.targets:
        raise GatewayError(400, "no alert targets are configured (server.json alerts.targets)")
    return jsonify({"results": sender.send_now(trial_alert())})


# -- audit and request detail ----------------------------------------------------------------------
@bp.get("/api/audit")
def audit_log():
    limit = limit_arg()
    return jsonify({"entries": _audit().latest(limit)})


@bp.get("/api/requests/<request_id>")
def request_detail(request_id: str):
    tenant = request.args.get("tenant") or None
    record = reports.request_detail(current_gateway(), request_id, lambda: gevent.sleep(0), tenant)
    if record is None:
        raise GatewayError(404, f"no usage record for request {request_id!r} in the last "
                                f"{reports.DETAIL_DAYS} days")
    return jsonify(record)
