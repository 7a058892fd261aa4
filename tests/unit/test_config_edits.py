"""The console's edits on parsed config documents: no files, no Flask."""
import json

import pytest

from ccgate.config.edits import (TENANT_FIELDS, UPSTREAM_FIELDS, EditRefused, add_tenant,
                                 add_upstream, delete_item, patch_tenant, public_tenant,
                                 public_upstream, set_tenant_key)
from tests.helpers import ROOT

NOW = "2026-11-27T00:00:00.000Z"
HASH = "sha256:" + "a" * 64


def schema_fields(name, items):
    doc = json.loads((ROOT / "ccgate" / "config" / "schemas" / f"{name}.schema.json").read_text())
    return set(doc["properties"][items]["items"]["properties"])


def test_settable_fields_are_fields_the_schema_knows():
    assert set(TENANT_FIELDS) <= schema_fields("tenants", "tenants") - {"id", "key", "keyHash"}
    assert set(UPSTREAM_FIELDS) <= schema_fields("upstreams", "upstreams") - {"id"}


def test_patch_keeps_order_and_unknown_keys_and_none_removes():
    doc = {"tenants": [{"description": "x", "id": "a", "limits": {"daily": {"maxUSD": 1}},
                        "expiresAt": "2026-12-31"}]}
    tenant, changed = patch_tenant(doc, "a", {"expiresAt": None, "name": "A"}, NOW)
    assert list(tenant) == ["description", "id", "limits", "name", "updatedAt"]
    assert sorted(changed) == ["expiresAt", "name"]
    assert patch_tenant(doc, "a", {"name": "A"}, NOW)[1] == []  # no change, nothing reported


def test_refusals():
    doc = {"tenants": [{"id": "a", "key": "sk-plain-key-123456"}]}
    for call, status in ((lambda: patch_tenant(doc, "b", {}, NOW), 404),
                         (lambda: patch_tenant(doc, "a", {"key": "k"}, NOW), 400),
                         (lambda: add_tenant(doc, {"id": "a"}, HASH, NOW), 409),
                         (lambda: add_tenant(doc, {"name": "no id"}, HASH, NOW), 400),
                         (lambda: add_upstream({"upstreams": []}, {"id": "u"}, NOW), 400),
                         (lambda: delete_item({"tenants": "oops"}, "tenants", "a"), 409)):
        with pytest.raises(EditRefused) as e:
            call()
        assert e.value.status == status


def test_keys_leave_as_hashes_and_show_masked():
    doc = {"tenants": [{"id": "a", "key": "sk-plain-key-123456"}]}
    assert public_tenant(doc["tenants"][0]) == {"id": "a", "key": "sk-pl…56"}
    tenant = set_tenant_key(doc, "a", HASH, NOW)
    assert "key" not in tenant and tenant["keyHash"] == HASH
    assert "keyHash" not in public_tenant(tenant)
    new = add_tenant(doc, {"id": "b", "limits": None}, HASH, NOW)
    assert new == {"id": "b", "createdAt": NOW, "name": "b", "enabled": True, "keyHash": HASH}
    assert public_upstream({"id": "u", "key": "sk-ant-secret-99"})["key"] == "sk-an…99"
    assert public_upstream({"id": "u", "key": "${ANTHROPIC_KEY}"})["key"] == "${ANTHROPIC_KEY}"
