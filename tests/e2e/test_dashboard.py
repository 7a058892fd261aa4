"""Admin dashboard and API with Flask's test client: auth, lockout, JSON, headers, no key leaks."""
import base64
import json
from datetime import date

import pytest
from werkzeug.security import generate_password_hash

from ccgate import create_app
from ccgate.usage.store_file import FileStore
from tests.helpers import OTHER_KEY, TENANT_KEY, UPSTREAM_KEY, upstream_entry, write_config

ADMIN = {"enabled": True, "path": "/admin", "username": "boss", "password": "s3cret-Passw0rd"}


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


GOOD = basic("boss", "s3cret-Passw0rd")


@pytest.fixture
def make_app(tmp_path, upstream):
    apps = []

    def factory(admin=ADMIN, **kw):
        d = write_config(tmp_path / f"cfg{len(apps)}", [upstream_entry(upstream)],
                         server={"admin": admin}, **kw)
        app = create_app(d, tmp_path / "data")
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["ccgate"].close()


@pytest.fixture
def admin_client(make_app):
    app = make_app()
    store = FileStore(app.extensions["ccgate"].data_dir)
    today = app.extensions["ccgate"].limiter.local_now(app.extensions["ccgate"].clock()).date()
    for tenant, model, cost in (("alice", "claude-sonnet-4", 0.25), ("alice", "claude-opus-4", 1.0),
                                ("bob", "claude-3-5-haiku", 0.01)):
        store.append({"requestId": f"{tenant}-{model}", "tenantId": tenant, "timestamp": f"{today}T01:00:00.000Z",
                      "model": model, "inputTokens": 100, "outputTokens": 50, "cacheCreationTokens": 0,
                      "cacheReadTokens": 300, "totalTokens": 450, "totalCost": cost, "statusCode": 200,
                      "errorType": None, "upstream": "primary", "api": "anthropic", "stream": True}, today)
    store.close()
    return app.test_client()


def test_no_credentials_asks_for_basic_auth(admin_client):
    r = admin_client.get("/dashboard")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert admin_client.get("/admin/api/overview").status_code == 401


def test_wrong_and_right_credentials(admin_client):
    assert admin_client.get("/dashboard", headers=basic("boss", "nope")).status_code == 401
    assert admin_client.get("/dashboard", headers=basic("admin", "s3cret-Passw0rd")).status_code == 401
    r = admin_client.get("/dashboard", headers=GOOD)
    assert r.status_code == 200 and b"dashboard.js" in r.data


def test_hashed_password(make_app):
    client = make_app(admin={**ADMIN, "password": generate_password_hash("hashed-pw")}).test_client()
    assert client.get("/admin/api/tenants", headers=basic("boss", "hashed-pw")).status_code == 200
    assert client.get("/admin/api/tenants", headers=basic("boss", "scrypt:x")).status_code == 401


def test_lockout_after_ten_failures(admin_client):
    for _ in range(10):
        assert admin_client.get("/admin/api/overview", headers=basic("boss", "guess")).status_code == 401
    r = admin_client.get("/admin/api/overview", headers=GOOD)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 200
    other_ip = admin_client.get("/admin/api/overview", headers=GOOD,
                                environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert other_ip.status_code == 200


def test_disabled_admin_is_404(make_app):
    client = make_app(admin={**ADMIN, "enabled": False}).test_client()
    assert client.get("/dashboard", headers=GOOD).status_code == 404
    assert client.get("/admin/api/overview", headers=GOOD).status_code == 404


def test_overview_json(admin_client):
    o = admin_client.get("/admin/api/overview", headers=GOOD).get_json()
    assert o["today"]["requests"] == 3 and o["today"]["costUSD"] == pytest.approx(1.26)
    assert o["today"]["cacheHitRate"] == pytest.approx(900 / 1200)
    assert o["month"]["requests"] == 3
    assert len(o["costByDay"]["dates"]) == 30
    assert o["costByDay"]["tenants"]["alice"][-1] == pytest.approx(1.25)
    assert set(o["models"]["today"]) == {"claude-sonnet-4", "claude-opus-4", "claude-3-5-haiku"}


def test_tenants_json_masks_keys(admin_client):
    r = admin_client.get("/admin/api/tenants", headers=GOOD)
    assert r.headers["cache-control"] == "no-store"
    tenants = {t["id"]: t for t in r.get_json()["tenants"]}
    assert tenants["alice"]["today"]["requests"] == 2 and tenants["alice"]["month"]["costUSD"] == pytest.approx(1.25)
    assert tenants["alice"]["key"] == TENANT_KEY[:5] + "…" + TENANT_KEY[-2:]
    assert tenants["carol"]["enabled"] is False
    assert TENANT_KEY not in r.get_data(as_text=True) and OTHER_KEY not in r.get_data(as_text=True)


def test_daily_limit_used(make_app):
    app = make_app(tenants=[{"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": 2}}}])
    gw = app.extensions["ccgate"]
    today = gw.limiter.local_now(gw.clock()).date()
    gw.store.append({"tenantId": "alice", "requestId": "x", "timestamp": f"{today}T00:00:00.000Z",
                     "totalCost": 1.5, "statusCode": 200}, today)
    tenants = app.test_client().get("/admin/api/tenants", headers=GOOD).get_json()["tenants"]
    assert tenants[0]["dailyLimitUsed"] == pytest.approx(0.75)


def test_upstreams_requests_usage_json(admin_client):
    up = admin_client.get("/admin/api/upstreams", headers=GOOD).get_json()
    assert up["strategy"] == "round_robin" and up["upstreams"][0]["id"] == "primary"
    assert "url" not in json.dumps(up) and UPSTREAM_KEY not in json.dumps(up)
    reqs = admin_client.get("/admin/api/requests?tenant=alice&limit=1", headers=GOOD).get_json()["requests"]
    assert len(reqs) == 1 and reqs[0]["tenantId"] == "alice"
    assert admin_client.get("/admin/api/requests?limit=x", headers=GOOD).status_code == 400
    assert admin_client.get("/admin/api/requests?tenant=nobody", headers=GOOD).status_code == 404
    today = date.today().isoformat()
    usage = admin_client.get("/admin/api/usage?from=2026-01-01&to=2026-01-03&tenant=bob",
                             headers=GOOD).get_json()
    assert [d["date"] for d in usage["tenants"]["bob"]] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert admin_client.get("/admin/api/usage?from=bad", headers=GOOD).status_code == 400
    assert admin_client.get(f"/admin/api/usage?from={today}&to=2020-01-01", headers=GOOD).status_code == 400


def test_security_headers(admin_client):
    for path, headers in (("/dashboard", GOOD), ("/dashboard/me", {})):
        r = admin_client.get(path, headers=headers)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["cache-control"] == "no-store"
        assert b"<script>" not in r.data  # no inline scripts


def test_language_from_accept_language(admin_client):
    zh = admin_client.get("/dashboard/me", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert b'data-lang="zh"' in zh.data
    en = admin_client.get("/dashboard/me", headers={"Accept-Language": "en-GB"})
    assert b'data-lang="en"' in en.data


def test_static_assets_are_self_hosted(admin_client):
    page = admin_client.get("/dashboard", headers=GOOD).get_data(as_text=True)
    assert "http://" not in page and "https://" not in page
    for asset in ("style.css", "i18n.js", "chart.js", "common.js", "dashboard.js", "me.js"):
        assert admin_client.get(f"/static/{asset}").status_code == 200
