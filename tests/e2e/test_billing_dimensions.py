"""Issue 31: every dimension Anthropic bills, through the gateway with a mock upstream, on both
stores; and /usage, the admin API, /metrics and the records agree on every figure.

Prices: Anthropic's pricing page (platform.claude.com/docs/en/about-claude/pricing), read
2026-12-06. Each expected figure is worked out by hand below from those prices.
"""
import json
import re

import anthropic
import pytest
import requests

from tests.e2e.servers import wait_until
from tests.helpers import TENANT_KEY, upstream_entry
from tests.mock_upstream import MockResponse, ResourceAPI, message

SONNET_45, OPUS_46 = "claude-sonnet-4-5-20250929", "claude-opus-4-6"
ADMIN = ("admin", "admin-pw-123")
SERVER = {"server": {"port": 3000}, "admin": {"username": "admin", "password": "admin-pw-123"},
          "metrics": {"token": "scrape-token-1"}}


def tenants(tenant_id: str, daily_usd: float | None = None) -> list[dict]:
    limits = {"limits": {"daily": {"maxUSD": daily_usd}}} if daily_usd else {}
    return [{"id": tenant_id, "key": TENANT_KEY, "allowBatches": True, **limits}]


@pytest.fixture(params=["file", "redis"])
def gateway_of(request, make_gateway, upstream):
    """A factory of a gateway on the file store or on Redis, in front of ``upstream``, for one
    tenant; the gateway's ``tenant`` is its id, named after the store (metrics are counted per
    process, so each run has its own tenant)."""
    server = SERVER
    if request.param == "redis":
        redis_server = request.getfixturevalue("redis_server")
        server = {**SERVER, "storage": {"type": "redis", "url": redis_server.url, "prefix": "b:"}}

    def factory(name: str, daily_usd: float | None = None):
        gw = make_gateway([upstream_entry(upstream)], server=server,
                          tenants=tenants(f"{name}-{request.param}", daily_usd))
        gw.tenant = f"{name}-{request.param}"
        return gw
    return factory


def post(gw, body: dict) -> requests.Response:
    return requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                         json={"max_tokens": 1000, "messages": [{"role": "user", "content": "x"}],
                               **body})


def answer_with(upstream, **usage_extra):
    def handler(req):
        msg = message(req.json["model"], [{"type": "text", "text": "ok"}],
                      input_tokens=req.json.get("metadata", {}).get("in", 1000),
                      output_tokens=1000)
        msg["usage"].update(usage_extra.get(req.json.get("metadata", {}).get("kind"), {}))
        return MockResponse(body=json.dumps(msg).encode())
    upstream.handler = handler


def records(gw) -> list[dict]:
    return [r for day in _days(gw) for r in day]


def _days(gw):
    store, today = gw.gateway.store, gw.gateway.limiter.local_now(gw.gateway.clock()).date()
    return [store.records(t, today) for t in store.tenants()]


def metric_cost(gw, tenant: str) -> float:
    text = requests.get(gw.url + "/metrics",
                        headers={"authorization": "Bearer scrape-token-1"}).text
    return sum(float(v) for v in re.findall(
        r'^ccgate_cost_usd_total\{[^}]*tenant="%s"[^}]*\} (\S+)$' % tenant, text, re.M))


def assert_views_agree(gw, tenant: str, expected: float) -> None:
    """The records, the tenant's /usage, the admin API and /metrics all say ``expected``."""
    assert sum(r["totalCost"] for r in records(gw)) == pytest.approx(expected)
    usage = requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY}).json()
    assert usage["today"]["costUSD"] == pytest.approx(expected, abs=1e-6)
    admin = requests.get(gw.url + "/admin/api/tenants", auth=ADMIN).json()["tenants"]
    row = next(t for t in admin if t["id"] == tenant)
    assert row["today"]["costUSD"] == pytest.approx(expected, abs=1e-6)
    assert metric_cost(gw, tenant) == pytest.approx(expected, abs=1e-6)


def test_each_dimension_through_the_gateway(gateway_of, upstream):
    answer_with(upstream, search={"server_tool_use": {"web_search_requests": 50}},
                geo={"inference_geo": "us"}, fast={"speed": "fast"})
    gw = gateway_of("dims")
    costs = []
    for body in ({"model": SONNET_45, "metadata": {"kind": "search"}},
                 {"model": OPUS_46},
                 {"model": OPUS_46, "metadata": {"kind": "geo"}, "inference_geo": "us"},
                 {"model": OPUS_46, "metadata": {"kind": "fast"}, "speed": "fast"},
                 {"model": "claude-sonnet-4-20250514", "metadata": {"in": 300_000}}):
        before = len(records(gw))
        assert post(gw, body).status_code == 200
        wait_until(lambda: len(records(gw)) == before + 1)
        costs.append(records(gw)[-1]["totalCost"])
    search, opus, geo, fast, long_context = costs
    # Sonnet 4.5: $3 / $15 per million; 50 searches at $10 per 1,000
    assert search == pytest.approx(0.003 + 0.015 + 0.50)
    assert opus == pytest.approx(0.005 + 0.025)  # Opus 4.6: $5 / $25
    assert geo == pytest.approx(1.1 * opus)  # data residency "us": 1.1x
    assert fast == pytest.approx(6 * opus)  # fast mode on Opus 4.6: $30 / $150
    # Sonnet 4 over 200k prompt tokens: $6 / $22.50 for the whole request
    assert long_context == pytest.approx(300_000 * 6 / 1e6 + 1000 * 22.5 / 1e6)
    kept = records(gw)
    assert kept[0]["webSearchRequests"] == 50 and kept[2]["inferenceGeo"] == "us"
    assert kept[3]["speed"] == "fast"
    assert_views_agree(gw, gw.tenant, sum(costs))


BATCH = [{"custom_id": f"req-{i}", "params": {"model": SONNET_45, "max_tokens": 1000,
                                               "messages": [{"role": "user", "content": "hi"}]}}
         for i in range(4)]


def test_batch_results_are_billed_at_half_price_once(gateway_of, upstream):
    api = upstream.handler = ResourceAPI(upstream)
    api.result_usage = {"input_tokens": 1000, "output_tokens": 1000}
    gw = gateway_of("batch")
    client = anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=TENANT_KEY,
                                 max_retries=0)
    batch = client.messages.batches.create(requests=BATCH)
    unmetered = requests.get(gw.url + "/admin/api/batches", auth=ADMIN).json()["unmetered"]
    assert [(b["id"], b["tenant"]) for b in unmetered] == [(batch.id, gw.tenant)]
    assert records(gw) == []
    assert [r.custom_id for r in client.messages.batches.results(batch.id)] == \
        [f"req-{i}" for i in range(4)]
    # 4 x (1,000 in + 1,000 out) on Sonnet 4.5 = 4 x $0.018 = $0.072, half in a batch: $0.036
    wait_until(lambda: len(records(gw)) == 4)
    kept = records(gw)
    assert all(r["batch"] is True and r["tenantId"] == gw.tenant for r in kept)
    assert {r["requestId"] for r in kept} == {f"{batch.id}/req-{i}" for i in range(4)}
    assert_views_agree(gw, gw.tenant, 0.036)
    # a second download is passed, not billed again
    assert len(list(client.messages.batches.results(batch.id))) == 4
    assert len(records(gw)) == 4
    assert_views_agree(gw, gw.tenant, 0.036)
    assert requests.get(gw.url + "/admin/api/batches", auth=ADMIN).json()["unmetered"] == []


def test_errored_results_cost_nothing_and_a_batch_must_fit_the_limit(gateway_of, upstream):
    api = upstream.handler = ResourceAPI(upstream)
    api.result_usage = {"input_tokens": 1000, "output_tokens": 1000}
    gw = gateway_of("batchlimit", daily_usd=0.05)
    client = anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=TENANT_KEY,
                                 max_retries=0)
    # each request's worst case: 1,000 output tokens at $7.50 per million in a batch, plus its
    # input; 4 fit $0.05, 8 do not
    small = [{**r, "custom_id": ("fail-" if i == 0 else "ok-") + str(i)}
             for i, r in enumerate(BATCH)]
    batch = client.messages.batches.create(requests=small)
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.batches.create(requests=BATCH + BATCH)
    assert refused.value.body["error"]["type"] == "billing_error"
    assert "batch" in refused.value.body["error"]["message"]
    assert refused.value.response.headers["x-should-retry"] == "false"
    # the first batch's worst case is held until its results are downloaded
    with pytest.raises(anthropic.RateLimitError):
        client.messages.batches.create(requests=BATCH[:3])
    assert len(list(client.messages.batches.results(batch.id))) == 4
    wait_until(lambda: len(records(gw)) == 3)  # the errored one is not billed
    assert_views_agree(gw, gw.tenant, 3 * 0.009)
    # now only what the results cost counts: $0.027 of $0.05 spent
    assert client.messages.batches.create(requests=BATCH[:2]).id
