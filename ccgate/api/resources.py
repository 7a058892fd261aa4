"""Owned upstream resources on ``/anthropic``: files, skills and message batches per tenant.

The endpoint table (``resources/endpoints.py``) says what a request is; this module refuses what
the tenant may not reach, answers lists from the owner records, checks that every id a request
names is the tenant's own (404 otherwise, before anything is sent), sends follow-ups to the
upstream that created the object, and records what the upstream creates.
"""
from __future__ import annotations

import json
import logging
import time

from flask import Response

from ..config.items import RESOURCE_SETTINGS
from ..core.errors import GatewayError
from ..proxy import Relay
from ..resources.endpoints import Endpoint, EndpointRefused, EXTRA, classify
from ..resources.listing import BadListQuery, page
from ..resources.owners import Owned, OwnerStore
from ..resources.refs import named_objects, reused_containers
from ..tenants import Tenant
from .request import drain

log = logging.getLogger("ccgate")
NOUN = {"files": "file", "skills": "skill", "batches": "message batch"}


def endpoint_for(tenant: Tenant, method: str, path: str) -> Endpoint:
    """What ``method path`` is for this tenant; 404/405 for what the gateway does not serve,
    403 for a resource the tenant is not allowed."""
    try:
        endpoint = classify(method, path)
    except EndpointRefused as e:
        if e.status == 404 and tenant.opened(path):
            return Endpoint(EXTRA)
        raise GatewayError(e.status, e.message, error_type="not_found_error" if e.status == 404
                           else "invalid_request_error") from None
    if endpoint.resource and endpoint.resource not in tenant.resources:
        setting = RESOURCE_SETTINGS[endpoint.resource]
        raise GatewayError(403, f"{NOUN[endpoint.resource]} endpoints are not allowed for this "
                                f"key: ask the operator to set {setting} for your tenant")
    return endpoint


def _not_found(kind: str, object_id: str) -> GatewayError:
    # The same answer for another tenant's id and for one that never existed.
    return GatewayError(404, f"{NOUN[kind]} {object_id!r} not found", error_type="not_found_error")


def owned(owners: OwnerStore, tenant: Tenant, kind: str, object_id: str) -> Owned:
    """The tenant's own object; 404 for anyone else's, 503 when the records cannot be read."""
    try:
        owned = owners.get(kind, object_id)
    except Exception:
        log.exception("owner lookup of %s %s failed", kind, object_id)
        raise GatewayError(503, "the gateway cannot look up who owns this object right now; "
                                "try again in a minute", error_type="overloaded_error",
                           headers={"retry-after": "30"}) from None
    if owned is None or owned.tenant != tenant.id:
        raise _not_found(kind, object_id)
    return owned


def holder(owners: OwnerStore, tenant: Tenant, endpoint: Endpoint, doc: dict | None,
           may_name: bool) -> str | None:
    """The upstream that must answer: the one holding the object the path names, or the objects
    the body names (each must be the tenant's own; ``may_name``: the body may name any, from
    ``parse_body``). None: any upstream."""
    found: set = set()
    if endpoint.object_id is not None and endpoint.resource:
        found.add(owned(owners, tenant, endpoint.resource, endpoint.object_id).upstream)
    if doc is not None and may_name:
        if reused_containers(doc):
            raise GatewayError(400, "container: reusing a container by its id is not possible "
                                    "through this gateway (containers are shared by every key "
                                    "of its upstream account); leave it out to get a new one")
        for kind, object_id in named_objects(doc):
            if kind not in tenant.resources:
                raise _not_found(kind, object_id)
            found.add(owned(owners, tenant, kind, object_id).upstream)
    if len(found) > 1:
        raise GatewayError(400, "this request names files or skills kept on different "
                                "upstreams of this gateway; upload them again together")
    return found.pop() if found else None


def list_answer(owners: OwnerStore, tenant: Tenant, endpoint: Endpoint, args) -> Response:
    """A list endpoint answered from the owner records: the tenant's own objects only."""
    try:
        doc = page(endpoint.resource, owners.owned_by(endpoint.resource, tenant.id), args)
    except BadListQuery as e:
        raise GatewayError(400, str(e)) from None
    return Response(json.dumps(doc), mimetype="application/json")


def _described(kind: str, relay: Relay) -> tuple[bytes, dict | None]:
    """The whole (small, JSON) answer, and the object it describes when it has an id.

    A batch's ``results_url`` names the upstream (whose URL is the operator's secret, and
    which the tenant's key cannot open): it becomes the gateway's own path, relative to the
    client's base URL, which is how the official SDKs resolve it."""
    raw = drain(relay.body)
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw, None
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        return raw, None
    if kind == "batches" and doc.get("results_url"):
        doc["results_url"] = f"/v1/messages/batches/{doc['id']}/results"
        raw = json.dumps(doc).encode()
    return raw, doc


def settle(owners: OwnerStore, tenant: Tenant, endpoint: Endpoint, relay: Relay,
           upstream: str | None, notes: dict | None = None) -> Response | None:
    """Record what a create, retrieve or delete did upstream (a created object with the
    gateway's ``notes``); the answer to send when its body had to be read (None: relay it as it
    comes)."""
    kind, route = endpoint.resource, endpoint.route
    if not kind or relay.status >= 300 or not (route.describes or route.kind == "delete"):
        return None
    raw, obj = _described(kind, relay) if route.describes else (None, None)
    try:
        if route.kind == "delete":
            owners.remove(kind, endpoint.object_id)
        elif obj is not None and route.kind == "create":
            owners.add(Owned(kind, obj["id"], tenant.id, upstream, time.time(), obj, notes or {}))
        elif obj is not None and obj["id"] == endpoint.object_id:
            owners.update(Owned(kind, obj["id"], tenant.id, upstream, 0.0, obj))
    except Exception:
        # Fail closed: an object whose creation was not recorded is nobody's (404 to all).
        log.exception("the owner record of %s %s (tenant %s) could not be written", kind,
                      obj["id"] if obj else endpoint.object_id, tenant.id)
    if raw is None:
        return None
    headers = [(k, v) for k, v in relay.headers if k.lower() != "content-length"]
    return Response(raw, status=relay.status, headers=headers)
