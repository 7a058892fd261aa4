"""The operator console's write API against a running gateway: keys, limits, upstreams, the
config files on disk, CSRF refusals, the audit log and request detail."""
import json
import time

import anthropic
import pytest
import requests

from tests.helpers import OTHER_KEY, TENANT_KEY, UPSTREAM_KEY, upstream_entry
from tests.e2e.servers import wait_until
from tests.mock_upstream import MockResponse, error_body

ADMIN = {"enabled": True, "path": "/admin", "username": "boss", "password": "s3cret-Passw0rd"}
AUTH = ("boss", "s3cret-Passw0rd")
WRITE = {"X-CCGate-Admin": "1"}
ASK = {"model": "claude-sonnet-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def console(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={"admin": ADMIN})
    gw.config_dir = gw.app.extensions["ccgate"].config.config_dir
    return gw


def write(gw, method, path, body=None, headers=WRITE, **kw):
    return requests.request(method, gw.url + "/admin/api" + path, auth=AUTH, json=body,
                            headers=headers, **kw)


def tenants_file(gw) -> dict:
    return json.loads((gw.config_dir / "tenants.json").read_text())


def sdk(gw, key):
    return anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=key, max_retries=0)


def test_add_a_family_member_and_use_the_key_at_once(console):
    r = write(console, "POST", "/tenants", {"id": "sister", "name": "Sister",
                                            "allowedModels": ["*sonnet*"],
                                            "limits": {"daily": {"maxUSD": 3}}})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert key.startswith("sk-ccg-") and r.json()["tenant"]["limits"] == {"daily": {"maxUSD": 3}}
    entry = tenants_file(console)["tenants"][-1]
    assert entry["id"] == "sister" and entry["keyHash"].startswith("sha256:") and "key" not in entry
    assert key not in (console.config_dir / "tenants.json").read_text()
    assert sdk(console, key).messages.create(**ASK).content  # works at once, no restart
    usage = requests.get(console.url + "/usage", headers={"x-api-key": key}).json()
    assert usage["limits"]["daily"]["maxUSD"] == 3


def test_disable_rotate_and_delete(console):
    client = sdk(console, TENANT_KEY)
    assert write(console, "PATCH", "/tenants/alice", {"enabled": False}).status_code == 200
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.create(**ASK)
    write(console, "PATCH", "/tenants/alice", {"enabled": True})
    r = write(console, "POST", "/tenants/alice/rotate-key")
    assert r.status_code == 200
    new_key = r.json()["key"]
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(**ASK)
    assert sdk(console, new_key).messages.create(**ASK).content
    assert "key" not in tenants_file(console)["tenants"][0]  # the plain key left the file
    r = write(console, "DELETE", "/tenants/alice")
    assert r.status_code == 204
    with pytest.raises(anthropic.AuthenticationError):
        sdk(console, new_key).messages.create(**ASK)
    assert [t["id"] for t in tenants_file(console)["tenants"]] == ["bob", "carol"]
    tenants = requests.get(console.url + "/admin/api/tenants", auth=AUTH).json()["tenants"]
    assert "alice" in [t["id"] for t in tenants if not t["configured"]]  # usage history stays


def test_bad_input_is_refused_with_problems_and_nothing_written(console):
    before = (console.config_dir / "tenants.json").read_bytes()
    cases = [
        ("POST", "/tenants", {"id": "x", "limits": {"daily": {"maxUSD": -1}}}, 400,
         "tenants.json: tenants[3].limits.daily.maxUSD"),
        ("POST", "/tenants", {"id": "../etc"}, 400, "tenants.json: tenants[3].id"),
        ("POST", "/tenants", {"id": "bob"}, 409, "exists already"),
        ("POST", "/tenants", {"id": "y", "key": "sk-chosen-by-caller"}, 400, "key"),
        ("PATCH", "/tenants/bob", {"expiresAt": "2026-02-30"}, 400, "expiresAt"),
        ("PATCH", "/tenants/bob", {"id": "robert"}, 400, "id"),
        ("PATCH", "/tenants/nobody", {"enabled": False}, 404, "no tenant"),
        ("PATCH", "/tenants/bob", [1, 2], 400, "JSON object"),
    ]
    for method, path, body, status, words in cases:
        r = write(console, method, path, body)
        assert r.status_code == status, (path, body, r.text)
        assert words in r.text, r.text
    r = write(console, "POST", "/tenants", {"id": "x", "limits": {"daily": {"maxUSD": -1}}})
    assert r.json()["problems"] == [
        "tenants.json: tenants[3].limits.daily.maxUSD: -1 is less than the minimum of 0"]
    assert (console.config_dir / "tenants.json").read_bytes() == before
    r = requests.post(console.url + "/admin/api/tenants", auth=AUTH, headers=WRITE,
                      data=b'{"id": "z", "id": "w"}', )
    assert r.status_code == 415  # no JSON content type


def test_hand_edits_unknown_keys_and_order_survive(console):
    path = console.config_dir / "tenants.json"
    doc = json.loads(path.read_text())
    doc["tenants"][1] = {"description": "my friend", "id": "bob", **doc["tenants"][1],
                         "createdAt": "2025-01-01T00:00:00.000Z"}
    doc["comment"] = "hand-written"
    path.write_text(json.dumps(doc, indent=4))
    time.sleep(0.01)
    # The console read the file before this hand edit; its PATCH applies to what is on disk.
    seen = requests.get(console.url + "/admin/api/config", auth=AUTH).json()["tenants"]
    assert [t["id"] for t in seen] == ["alice", "bob", "carol"]
    doc["tenants"][0]["name"] = "Alice (edited by hand)"
    path.write_text(json.dumps(doc, indent=4))
    assert write(console, "PATCH", "/tenants/bob", {"limits": {"daily": {"maxUSD": 2}}}).ok
    after = tenants_file(console)
    assert after["comment"] == "hand-written"
    assert after["tenants"][0]["name"] == "Alice (edited by hand)"
    bob = after["tenants"][1]
    assert list(bob)[:2] == ["description", "id"] and bob["createdAt"] == "2025-01-01T00:00:00.000Z"
    assert bob["limits"] == {"daily": {"maxUSD": 2}} and "updatedAt" in bob
    assert json.loads((console.config_dir / "tenants.json.bak").read_text()) == doc
    assert (path.stat().st_mode & 0o777) == 0o600


def test_cross_site_writes_are_refused(console):
    body = {"id": "mallory"}
    assert write(console, "POST", "/tenants", body,
                 headers={**WRITE, "Origin": "https://evil.example"}).status_code == 403
    assert write(console, "POST", "/tenants", body,
                 headers={**WRITE, "Referer": "https://evil.example/x"}).status_code == 403
    assert write(console, "POST", "/tenants", body, headers={}).status_code == 403
    form = requests.post(console.url + "/admin/api/tenants", auth=AUTH, data={"id": "mallory"},
                         headers=WRITE)
    assert form.status_code == 415
    assert "mallory" not in (console.config_dir / "tenants.json").read_text()
    same = write(console, "POST", "/tenants", body, headers={**WRITE, "Origin": console.url})
    assert same.status_code == 201
    assert requests.post(console.url + "/admin/api/tenants", json=body,
                         headers=WRITE).status_code == 401  # and a login, of course


def test_audit_log_names_who_what_and_never_a_key(console):
    key = write(console, "POST", "/tenants", {"id": "dora", "name": "Dora"}).json()["key"]
    write(console, "PATCH", "/upstreams/primary", {"key": "sk-ant-new-upstream-key-999999"})
    write(console, "POST", "/tenants/dora/rotate-key")
    entries = requests.get(console.url + "/admin/api/audit?limit=10", auth=AUTH).json()["entries"]
    assert [(e["action"], e["target"]) for e in entries] == [
        ("tenant.rotate-key", "dora"), ("upstream.update", "primary"), ("tenant.create", "dora")]
    assert entries[1]["changed"] == ["key"] and entries[2]["changed"] == ["id", "name"]
    assert entries[0]["user"] == "boss" and entries[0]["ip"] == "127.0.0.1"
    text = (console.app.extensions["ccgate"].data_dir / "logs" / "audit.log").read_text()
    assert key not in text and "sk-ant-new-upstream-key-999999" not in text


def test_upstreams_add_test_and_keys_stay_masked(console, make_mock):
    mirror = make_mock("mirror")
    r = write(console, "POST", "/upstreams/test", {"url": mirror.url, "key": "sk-mirror-key-123456"})
    assert r.json()["ok"] is True and r.json()["status"] == 200 and r.json()["latencyMs"] >= 0
    assert mirror.requests[-1].json["max_tokens"] == 1
    r = write(console, "POST", "/upstreams", {"id": "mirror", "url": mirror.url,
                                              "key": "sk-mirror-key-123456", "weight": 2})
    assert r.status_code == 201 and r.json()["upstream"]["key"] == "sk-mi…56"
    assert "sk-mirror-key-123456" not in r.text
    listed = requests.get(console.url + "/admin/api/config", auth=AUTH).text
    assert "sk-mirror-key-123456" not in listed and UPSTREAM_KEY not in listed
    assert "mirror" in [u["id"] for u in requests.get(console.url + "/admin/api/upstreams",
                                                      auth=AUTH).json()["upstreams"]]
    mirror.handler = lambda req: MockResponse(401, body=error_body(
        "authentication_error", "invalid x-api-key sk-mirror-key-123456"))
    r = write(console, "POST", "/upstreams/mirror/test", {"model": "claude-haiku-4-5"})
    assert r.json()["ok"] is False and r.json()["status"] == 401
    assert "invalid x-api-key" in r.json()["reason"] and "sk-mirror-key-123456" not in r.text
    patched = write(console, "PATCH", "/upstreams/mirror", {"weight": 5})
    assert patched.json()["upstream"]["key"] == "sk-mi…56"
    assert write(console, "DELETE", "/upstreams/mirror").status_code == 204
    bad = write(console, "POST", "/upstreams", {"id": "u2", "url": "not a url", "weight": -3})
    assert bad.status_code == 400 and bad.json()["problems"]


def test_request_detail_shows_the_failover(console, make_mock, upstream):
    backup = make_mock("backup")
    write(console, "POST", "/upstreams", {"id": "backup", "url": backup.url, "key": UPSTREAM_KEY})
    upstream.handler = lambda req: MockResponse(529, body=error_body("overloaded_error", "busy"))
    backup.handler = None
    r = requests.post(console.url + "/anthropic/v1/messages", headers={"x-api-key": OTHER_KEY},
                      json={**ASK, "model": "claude-haiku-4-5"})
    assert r.status_code == 200
    rid = r.headers["request-id"] if "request-id" in r.headers else r.headers["x-request-id"]
    detail = lambda: requests.get(console.url + f"/admin/api/requests/{rid}", auth=AUTH)
    wait_until(lambda: detail().status_code == 200)
    record = detail().json()
    assert [(a["upstream"], a.get("status")) for a in record["attempts"]] == [
        ("primary", 529), ("backup", 200)]
    assert record["attempts"][0]["error"] == "HTTP 529" and record["upstream"] == "backup"
    assert requests.get(console.url + "/admin/api/requests/nope", auth=AUTH).status_code == 404


def test_environment_references_written_through_the_console_never_expand(console, monkeypatch):
    """Issue 29, item 4: a name, number or pattern sent as ``${VAR}`` is refused with a 400
    that shows no value, and nothing anywhere answers with the variable's value."""
    value = "the-admin-password-from-the-environment"
    monkeypatch.setenv("CCGATE_TEST_SECRET", value)
    ref = "${CCGATE_TEST_SECRET}"
    answers = [
        write(console, "POST", "/tenants", {"id": "mallory", "name": ref}),
        write(console, "PATCH", "/tenants/alice", {"name": ref}),
        write(console, "PATCH", "/tenants/alice", {"limits": {"daily": {"maxUSD": ref}}}),
        write(console, "PATCH", "/tenants/alice", {"allowedModels": [ref]}),
        write(console, "PATCH", "/upstreams/primary", {"name": ref}),
        write(console, "PATCH", "/upstreams/primary", {"key": ref}),
        write(console, "POST", "/upstreams", {"id": "x", "url": ref}),
    ]
    for r in answers:
        assert r.status_code == 400, r.text
        assert "not accepted from the console" in r.json()["error"]["message"]
    assert ref not in json.dumps(tenants_file(console))
    views = [requests.get(console.url + "/usage", headers={"x-api-key": TENANT_KEY}),
             requests.get(console.url + "/usage/statusline", headers={"x-api-key": TENANT_KEY}),
             requests.get(console.url + "/health"),
             requests.get(console.url + "/admin/api/config", auth=AUTH),
             requests.get(console.url + "/admin/api/tenants", auth=AUTH)]
    for r in answers + views:
        assert value not in r.text
