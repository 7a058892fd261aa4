"""Upstream economics and alerts: what each upstream costs, budgets and balances, priority tiers,
and alerts to a local webhook and a Telegram stand-in."""
import hashlib
import hmac
import json
import time

import anthropic
import gevent
import openai
import pytest
import requests

from tests.helpers import OTHER_KEY, TENANT_KEY, upstream_entry
from tests.e2e.servers import wait_until
from tests.mock_upstream import MockResponse, error_body

MODEL = "claude-sonnet-4-20250514"
ASK = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
LIST = (25 * 3 + 12 * 15) / 1e6  # the mock's 25 in / 12 out tokens at $3 / $15 per M
ADMIN = {"enabled": True, "path": "/admin", "username": "boss", "password": "s3cret-Passw0rd"}
AUTH = ("boss", "s3cret-Passw0rd")
WRITE = {"X-CCGate-Admin": "1"}


def records(gw, tenant="alice"):
    root = gw.gateway.data_dir / "usage" / tenant
    return [json.loads(line) for f in sorted(root.glob("*/*.json"))
            for line in f.read_text().split("\n") if line]


def ask(gw, key=TENANT_KEY):
    return requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": key},
                         json=ASK, timeout=10)


def upstream_rows(gw):
    return {u["id"]: u for u in requests.get(gw.url + "/admin/api/upstreams", auth=AUTH)
            .json()["upstreams"]}


def test_upstream_cost_and_billing_multiplier_on_both_apis(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream, priceMultiplier=0.3)], server={
        "admin": ADMIN, "openai": {"enabled": True, "models": {"gpt-4o": MODEL}}},
        tenants=[{"id": "alice", "key": TENANT_KEY, "billingMultiplier": 1.5},
                 {"id": "bob", "key": OTHER_KEY}])
    anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=TENANT_KEY,
                        max_retries=0).messages.create(**ASK)
    openai.OpenAI(base_url=gw.url + "/openai/v1", api_key=TENANT_KEY, max_retries=0) \
        .chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    ask(gw, OTHER_KEY)
    wait_until(lambda: len(records(gw)) == 2 and len(records(gw, "bob")) == 1)
    for r in records(gw):
        assert r["totalCost"] == pytest.approx(LIST * 1.5)
        assert r["listCost"] == pytest.approx(LIST)
        assert r["upstreamCost"] == pytest.approx(LIST * 0.3)
    bob = records(gw, "bob")[0]
    assert bob["totalCost"] == pytest.approx(LIST) and "listCost" not in bob
    mine = requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY}).json()["today"]
    assert mine["costUSD"] == pytest.approx(2 * LIST * 1.5, abs=1e-6)
    assert "upstreamCostUSD" not in mine and "listCostUSD" not in mine  # not the tenant's business
    row = upstream_rows(gw)[upstream.name]
    assert row["today"]["upstreamCostUSD"] == pytest.approx(3 * LIST * 0.3, abs=1e-6)
    assert row["today"]["listCostUSD"] == pytest.approx(3 * LIST, abs=1e-6)
    assert row["today"]["requests"] == 3
    tenants = {t["id"]: t for t in requests.get(gw.url + "/admin/api/tenants", auth=AUTH)
               .json()["tenants"]}
    assert tenants["alice"]["month"]["listCostUSD"] == pytest.approx(2 * LIST, abs=1e-6)
    assert tenants["alice"]["month"]["costUSD"] == pytest.approx(2 * LIST * 1.5, abs=1e-6)


def test_budget_and_balance_take_upstreams_out_and_top_up_brings_them_back(make_gateway,
                                                                           make_mock):
    a, b = make_mock("a"), make_mock("b")
    gw = make_gateway([upstream_entry(a, balanceUSD=2.5 * LIST, balanceSetAt="2020-01-01"),
                       upstream_entry(b, limits={"daily": {"maxUSD": 1.5 * LIST}})],
                      server={"admin": ADMIN})
    statuses = [ask(gw).status_code for _ in range(5)]
    assert statuses == [200] * 5
    # a: 3 requests use up 2.5 requests of balance; b: 2 pass its 1.5-request daily limit
    wait_until(lambda: all(u["budget"] for u in upstream_rows(gw).values()))
    rows = upstream_rows(gw)
    assert rows["a"]["budget"].startswith("budget: prepaid balance of") and rows["a"]["balanceLeftUSD"] == 0
    assert rows["b"]["budget"].startswith("budget: daily limit of")
    health = requests.get(gw.url + "/health").json()
    assert all("budget" in (u["reason"] or "") for u in health["upstreams"])
    before = len(a.requests) + len(b.requests)
    r = ask(gw)
    assert r.status_code == 503 and r.json()["error"]["type"] == "overloaded_error"
    assert "out of upstream budget" in r.json()["error"]["message"]
    assert len(a.requests) + len(b.requests) == before  # no failover storm: nothing sent
    top_up = requests.patch(gw.url + "/admin/api/upstreams/a", auth=AUTH, headers=WRITE,
                            json={"balanceUSD": 20})
    assert top_up.status_code == 200 and top_up.json()["upstream"]["balanceSetAt"]
    assert ask(gw).status_code == 200 and a.requests[-1].path.endswith("/v1/messages")
    assert upstream_rows(gw)["a"]["balanceLeftUSD"] == pytest.approx(20 - LIST * 1.0, abs=1e-6)


def test_priority_tiers_end_to_end(make_gateway, make_mock):
    m1, m2, official = make_mock("m1"), make_mock("m2"), make_mock("official")
    gw = make_gateway([upstream_entry(m1, priceMultiplier=0.3), upstream_entry(m2, priceMultiplier=0.3),
                       upstream_entry(official, priority=1)],
                      load_balancer={"unhealthyThreshold": 1})
    for _ in range(6):
        assert ask(gw).status_code == 200
    assert len(official.requests) == 0 and len(m1.requests) == len(m2.requests) == 3
    busy = lambda req: MockResponse(529, headers=[("content-type", "application/json"),
                                                  ("retry-after", "2")],
                                    body=error_body("overloaded_error", "busy"))
    m1.handler = m2.handler = busy
    for _ in range(4):
        assert ask(gw).status_code == 200
    assert len(official.requests) == 4  # tier 1 only while all of tier 0 is out
    m1.handler = m2.handler = None
    time.sleep(2.1)  # the cooldowns (retry-after: 2) end
    served = len(official.requests)
    for _ in range(4):
        assert ask(gw).status_code == 200
    assert len(official.requests) == served  # back on tier 0


# -- alerts ----------------------------------------------------------------------------------------
@pytest.fixture
def hooks(make_mock):
    """A local webhook receiver and a Telegram Bot API stand-in."""
    hook, telegram = make_mock("hooks"), make_mock("telegram")
    hook.handler = lambda req: MockResponse(204)
    telegram.handler = lambda req: MockResponse(200, body=b'{"ok": true, "result": {}}')
    return hook, telegram


def alerts_config(hook, telegram, **extra):
    return {"targets": [{"type": "webhook", "url": hook.url + "/ccgate", "secret": "hook-secret"},
                        {"type": "telegram", "botToken": "123:telegram-token", "chatId": "-100",
                         "apiBase": telegram.url}], **extra}


def events(hook):
    return [json.loads(r.body) for r in hook.requests if r.path == "/ccgate"]


def test_alerts_upstream_down_recovered_signed_and_not_repeated(make_gateway, make_mock, hooks):
    hook, telegram = hooks
    up = make_mock("mirror")
    gw = make_gateway([upstream_entry(up)], server={
        "admin": ADMIN, "alerts": alerts_config(hook, telegram)},
        load_balancer={"unhealthyThreshold": 1})
    up.handler = lambda req: MockResponse(529, headers=[("content-type", "application/json"),
                                                        ("retry-after", "3")],
                                          body=error_body("overloaded_error", "busy"))
    failing_since = time.monotonic()
    assert ask(gw).status_code == 529
    wait_until(lambda: any(e["event"] == "upstream_down" for e in events(hook)), timeout=5)
    assert time.monotonic() - failing_since < 5
    down = next(e for e in events(hook) if e["event"] == "upstream_down")
    assert down["data"] == {"upstream": "mirror", "reason": "HTTP 529"} and "mirror" in down["message"]
    raw = next(r for r in hook.requests if r.path == "/ccgate")
    expected = "sha256=" + hmac.new(b"hook-secret", raw.body, hashlib.sha256).hexdigest()
    assert raw.headers["x-ccgate-signature"] == expected
    # Only the upstream's messages: after 09:00 a fresh gateway also sends yesterday's summary.
    sent = [r.json for r in telegram.requests if r.path == "/bot123:telegram-token/sendMessage"
            and "left rotation" in r.json["text"]]
    assert len(sent) == 1 and sent[0]["chat_id"] == "-100" and "mirror" in sent[0]["text"]
    up.handler = None
    time.sleep(3.1)
    assert ask(gw).status_code == 200
    wait_until(lambda: any(e["event"] == "upstream_recovered" for e in events(hook)), timeout=5)
    # It fails again at once: within the dedupe window no second upstream_down is sent.
    up.handler = lambda req: MockResponse(529, headers=[("retry-after", "1")],
                                          body=error_body("overloaded_error", "busy"))
    ask(gw)
    gevent.sleep(2.5)
    assert [e["event"] for e in events(hook)].count("upstream_down") == 1
    logs = "".join(f.read_text(errors="replace")
                   for f in (gw.gateway.data_dir / "logs").glob("*.log"))
    assert "telegram-token" not in logs and "hook-secret" not in logs


def test_alerts_tenant_warning_at_80_percent_then_reached_once(make_gateway, upstream, hooks):
    hook, telegram = hooks
    gw = make_gateway([upstream_entry(upstream)], server={
        "alerts": alerts_config(hook, telegram, events=["tenant_limit_warning",
                                                        "tenant_limit_reached"])},
        tenants=[{"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": 5 * LIST - 1e-9}}}])
    for _ in range(3):
        ask(gw)
    gevent.sleep(1.5)
    assert events(hook) == []  # 60 %: nothing yet
    ask(gw)  # 80 %
    wait_until(lambda: [e["event"] for e in events(hook)] == ["tenant_limit_warning"], timeout=5)
    warning = events(hook)[0]
    assert warning["data"]["limit"] == "daily" and warning["data"]["tenant"] == "alice"
    ask(gw)  # 100 %
    wait_until(lambda: [e["event"] for e in events(hook)] ==
               ["tenant_limit_warning", "tenant_limit_reached"], timeout=5)
    assert ask(gw).status_code == 429
    gevent.sleep(2.5)
    assert len(events(hook)) == 2  # once per limit period


def test_dead_alert_target_does_not_slow_requests(make_gateway, make_mock):
    import socket
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(100)  # accepts, never answers
    up = make_mock("mirror")
    dead = {"targets": [{"type": "webhook", "url": f"http://127.0.0.1:{blackhole.getsockname()[1]}/x"}]}
    try:
        gw = make_gateway([upstream_entry(up)], server={"alerts": dead},
                          load_balancer={"unhealthyThreshold": 1})
        def timed(n=20):
            took = []
            for _ in range(n):
                started = time.monotonic()
                assert ask(gw).status_code == 200
                took.append(time.monotonic() - started)
            return sorted(took)

        base = timed()
        up.handler = lambda req: MockResponse(529, headers=[("retry-after", "5")],
                                              body=error_body("overloaded_error", "busy"))
        ask(gw)  # an upstream_down alert now waits on the dead target
        alerts = gw.gateway.watchdog.alerts
        wait_until(lambda: alerts.deliveries.free_count() < 20, timeout=5)
        up.handler = None
        took = timed()
        print(f"requests, p50 / max: {base[10] * 1000:.1f} / {base[-1] * 1000:.1f} ms before, "
              f"{took[10] * 1000:.1f} / {took[-1] * 1000:.1f} ms while an alert waits on a dead "
              f"target")
        assert took[-1] < 1.0  # delivery waits up to 10 s a try; requests never do
        assert alerts.deliveries.free_count() < 20 and alerts.sent == 0  # still trying
    finally:
        blackhole.close()


def test_alert_test_endpoint_reports_each_target(make_gateway, upstream, hooks):
    hook, telegram = hooks
    gw = make_gateway([upstream_entry(upstream)], server={
        "admin": ADMIN, "alerts": alerts_config(hook, telegram, language="zh")})
    r = requests.post(gw.url + "/admin/api/alerts/test", auth=AUTH, headers=WRITE)
    assert r.status_code == 200
    assert [(x["target"], x["ok"]) for x in r.json()["results"]] == [
        ("webhook 127.0.0.1", True), ("telegram chat -100", True)]
    assert "telegram-token" not in r.text
    assert events(hook)[0]["event"] == "test" and "测试" in events(hook)[0]["message"]


def test_the_daily_summary_goes_out_once_across_restarts(make_gateway, make_mock, hooks):
    """Issue 32: the previous day's summary was sent again at every restart."""
    hook, telegram = hooks
    up = make_mock("mirror")
    server = {"admin": ADMIN, "alerts": alerts_config(hook, telegram, dailySummaryAt="00:00",
                                                      events=["daily_summary"])}
    first = make_gateway([upstream_entry(up)], server=server)
    summaries = lambda: [e for e in events(hook) if e["event"] == "daily_summary"]
    wait_until(lambda: len(summaries()) == 1, timeout=5)
    first.stop()
    make_gateway([upstream_entry(up)], server=server)  # the same data dir: a restart
    gevent.sleep(2.5)  # two ticks of its watchdog
    assert len(summaries()) == 1
