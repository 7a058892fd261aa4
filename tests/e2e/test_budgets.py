"""Budgets that hold, first part (issue 15): spend refusals clients stop retrying, key expiry,
modelRewrite for restricted tenants, the Claude Code status line."""
import json

import anthropic
import openai
import pytest
import requests

from ccgate.config.load import ConfigError, load_config
from tests.helpers import TENANT_KEY, upstream_entry, write_config
from tests.e2e.servers import wait_until

SONNET = "claude-sonnet-4-20250514"
ASK = {"model": SONNET, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def access_lines(gw) -> list[dict]:
    log = gw.gateway.data_dir / "logs" / "access.log"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def spent(make_gateway, upstream):
    """A tenant that has used up its daily limit."""
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": 0.0001}}}])
    assert requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                         json=ASK).status_code == 200
    return gw


def test_spend_refusal_is_a_billing_error_the_sdks_do_not_retry(spent):
    client = anthropic.Anthropic(base_url=spent.url + "/anthropic", api_key=TENANT_KEY)
    with pytest.raises(anthropic.RateLimitError) as e:
        client.messages.create(**ASK)  # default retry settings
    assert e.value.body["error"]["type"] == "billing_error"
    assert "daily spending limit of $0.0001" in e.value.body["error"]["message"]
    headers = e.value.response.headers
    assert headers["x-should-retry"] == "false" and int(headers["retry-after"]) > 0
    oa = openai.OpenAI(base_url=spent.url + "/openai/v1", api_key=TENANT_KEY)
    with pytest.raises(openai.RateLimitError) as e:
        oa.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "insufficient_quota" and e.value.type == "insufficient_quota"
    wait_until(lambda: len(access_lines(spent)) >= 3)
    refused = [x for x in access_lines(spent) if x["status"] == 429]
    assert len(refused) == 2  # one each: neither SDK retried


def test_rate_limits_stay_retryable(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)],
                      tenants=[{"id": "alice", "key": TENANT_KEY, "limits": {"rpm": 1}}])
    requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json=ASK)
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    assert "x-should-retry" not in r.headers


@pytest.mark.parametrize("expires,status", [("2020-01-31", 403), ("2999-12-31", 200),
                                            ("2020-01-31T08:00:00Z", 403)])
def test_expired_keys_are_refused(make_gateway, upstream, expires, status):
    gw = make_gateway([upstream_entry(upstream)],
                      tenants=[{"id": "alice", "key": TENANT_KEY, "expiresAt": expires}])
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json=ASK)
    assert r.status_code == status
    if status == 403:
        assert r.json()["error"]["type"] == "permission_error"
        assert "this key expired on 2020-0" in r.json()["error"]["message"]
        assert upstream.requests == []


def test_an_impossible_expiry_is_a_config_error(tmp_path):
    d = write_config(tmp_path, [{"id": "a", "url": "http://127.0.0.1:1"}],
                     tenants=[{"id": "t", "key": TENANT_KEY, "expiresAt": "2026-13-01"}])
    with pytest.raises(ConfigError) as e:
        load_config(d)
    assert e.value.lines[0].startswith("tenants.json: tenants[0].expiresAt: not a real date")


def test_model_rewrite_lets_a_restricted_tenant_use_claude_code(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "allowedModels": ["*sonnet*", "*haiku*"],
         "modelRewrite": {"*opus*": "claude-sonnet-4-5", "*": "claude-3-5-haiku-20241022"}}])
    client = anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=TENANT_KEY,
                                 max_retries=0)
    msg = client.messages.create(**{**ASK, "model": "claude-opus-4-1-20250805"})
    assert msg.model == "claude-sonnet-4-5"
    assert upstream.requests[-1].json["model"] == "claude-sonnet-4-5"
    oa = openai.OpenAI(base_url=gw.url + "/openai/v1", api_key=TENANT_KEY, max_retries=0)
    oa.chat.completions.create(model="claude-opus-4-1", messages=[{"role": "user", "content": "x"}])
    assert upstream.requests[-1].json["model"] == "claude-sonnet-4-5"
    client.messages.create(**{**ASK, "model": "claude-3-7-sonnet"})  # "*" sends the rest to Haiku
    assert upstream.requests[-1].json["model"] == "claude-3-5-haiku-20241022"
    root = gw.gateway.data_dir / "usage" / "alice"
    wait_until(lambda: sum(len(f.read_text().splitlines()) for f in root.glob("*/*.json")) == 3)
    records = [json.loads(x) for f in root.glob("*/*.json") for x in f.read_text().splitlines()]
    assert records[0]["model"] == "claude-sonnet-4-5"
    assert records[0]["requestedModel"] == "claude-opus-4-1-20250805"


def test_status_line_for_claude_code(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "name": "Alice", "key": TENANT_KEY,
         "limits": {"daily": {"maxUSD": 5}, "monthly": {"maxUSD": 30}}},
        {"id": "bob", "key": "sk-ccg-test-bob-no-limits-12345"}])
    requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    r = requests.get(gw.url + "/usage/statusline", headers={"authorization": f"Bearer {TENANT_KEY}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.text == "Alice · today $0.000255/$5.00 · month $0.000255/$30.00\n"
    r = requests.get(gw.url + "/usage/statusline",
                     headers={"x-api-key": "sk-ccg-test-bob-no-limits-12345"})
    assert r.text == "bob · today $0.00\n"
    assert requests.get(gw.url + "/usage/statusline").status_code == 401


def test_twenty_parallel_streams_do_not_overshoot_the_daily_limit(make_gateway, upstream):
    """The acceptance experiment: before reservations all 20 were answered ($0.24, 4.8× the
    limit); now recorded spend ends at most one request's cost above it."""
    import gevent.pool
    from tests.mock_upstream import message, message_events
    limit, one = 0.05, (1000 * 3 + 600 * 15) / 1e6  # $0.012 a stream at Sonnet's prices
    events = message_events(message(SONNET, [{"type": "text", "text": "x" * 64}],
                                    input_tokens=1000, output_tokens=600))
    upstream.handler = lambda req: upstream.stream(events, delay_s=0.05)
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": limit}}}])
    ask = {**ASK, "max_tokens": 600, "stream": True,
           "messages": [{"role": "user", "content": "word " * 800}]}  # ~1,000 input tokens

    def one_stream(_):
        r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                          json=ask)
        return r.status_code, (r.json()["error"]["type"] if r.status_code != 200 else None)

    results = gevent.pool.Pool(20).map(one_stream, range(20))
    served = sum(1 for status, _ in results if status == 200)
    assert 0 < served < 20
    assert all(kind == "rate_limit_error" for status, kind in results if status == 429)
    usage = lambda: requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY}).json()
    wait_until(lambda: usage()["today"]["requests"] == served)
    spent = usage()["today"]["costUSD"]
    print(f"20 parallel streams: {served} served, ${spent:.4f} recorded (limit ${limit})")
    assert spent <= limit + one, f"{served} served, ${spent:.4f} spent"


def test_model_lists_show_only_what_the_tenant_may_use(make_gateway, upstream):
    from tests.mock_upstream import MockResponse
    listing = {"data": [{"type": "model", "id": i, "display_name": i, "created_at": "2025-01-01"}
                        for i in ("claude-opus-4-1", "claude-sonnet-4-5", "claude-3-5-haiku")],
               "has_more": False, "first_id": "claude-opus-4-1", "last_id": "claude-3-5-haiku"}
    upstream.handler = lambda req: MockResponse(body=json.dumps(listing).encode())
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "allowedModels": ["*sonnet*", "*haiku*"]}])
    client = anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=TENANT_KEY)
    assert [m.id for m in client.models.list()] == ["claude-sonnet-4-5", "claude-3-5-haiku"]
    r = requests.get(gw.url + "/anthropic/v1/models", headers={"x-api-key": TENANT_KEY}).json()
    assert r["first_id"] == "claude-sonnet-4-5" and r["last_id"] == "claude-3-5-haiku"


def test_dashboard_shows_expired_tenants(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={
        "admin": {"username": "admin", "password": "admin-pw-123"}}, tenants=[
        {"id": "old", "key": TENANT_KEY, "expiresAt": "2020-01-31"},
        {"id": "new", "key": "sk-ccg-test-new-tenant-key-1234", "expiresAt": "2999-01-01"}])
    rows = requests.get(gw.url + "/admin/api/tenants", auth=("admin", "admin-pw-123")).json()
    by_id = {t["id"]: t for t in rows["tenants"]}
    assert by_id["old"]["expired"] is True and by_id["old"]["expiresAt"].startswith("2020-02-01")
    assert by_id["new"]["expired"] is False


def test_status_line_shows_the_five_hour_window(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"window5h": {"maxUSD": 2}}}])
    requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    line = requests.get(gw.url + "/usage/statusline", headers={"x-api-key": TENANT_KEY}).text
    assert line.startswith("alice · today $0.000255 · 5h $0.000255/$2.00 (resets ")
    limits = requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY}).json()["limits"]
    assert limits["window5h"]["usedUSD"] == pytest.approx(0.000255)


@pytest.mark.parametrize("cut", [True, False])
def test_cut_streams_ends_a_stream_that_passes_the_limit(make_gateway, upstream, cut):
    from tests.mock_upstream import message, message_events
    text = "lorem ipsum " * 4000  # 48,000 characters: about $0.18 of Sonnet output
    events = message_events(message(SONNET, [{"type": "text", "text": text}],
                                    input_tokens=100, output_tokens=12000))
    upstream.handler = lambda req: upstream.stream(events)
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": 0.05},
                                                      "cutStreams": cut}}])
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={**ASK, "stream": True})
    root = gw.gateway.data_dir / "usage" / "alice"
    wait_until(lambda: list(root.glob("*/*.json")))
    record = json.loads(next(root.glob("*/*.json")).read_text().splitlines()[-1])
    if cut:
        assert "event: error" in r.text and '"billing_error"' in r.text
        assert "message_stop" not in r.text and "cutStreams" in r.text
        assert record["interrupted"] == "limit"
        assert 0.05 <= record["totalCost"] < 0.05 + 0.01  # within one check (~500 tokens)
    else:  # the default: a running stream finishes
        assert "message_stop" in r.text and record["totalCost"] > 0.15


def test_dashboard_tenant_table_carries_every_window(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={
        "admin": {"username": "admin", "password": "admin-pw-123"}}, tenants=[
        {"id": "alice", "key": TENANT_KEY,
         "limits": {"window5h": {"maxUSD": 2}, "daily": {"maxUSD": 5}, "weekly": {"maxUSD": 20}}}])
    requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    row = requests.get(gw.url + "/admin/api/tenants", auth=("admin", "admin-pw-123")).json()
    windows = row["tenants"][0]["windows"]
    assert set(windows) == {"window5h", "daily", "weekly"}
    assert windows["window5h"]["usedUSD"] == pytest.approx(0.000255)
