"""Budget verdicts and alert messages, without sockets."""
import hashlib
import hmac
import json
from datetime import datetime, timezone

from ccgate.alerts import events
from ccgate.alerts.messages import accepted, delivery, describe
from ccgate.config.settings import UpstreamConfig
from ccgate.upstreams.budget import UpstreamSpend, balance_left, balance_low, budget_verdict


def up(**kw):
    return UpstreamConfig(id="m", name="M", url="http://m", key="k", weight=1, enabled=True,
                          auth="auto", read_timeout_s=600, **kw)


def test_budget_verdicts():
    assert budget_verdict(up(), UpstreamSpend(today=99, month=999)) is None  # no budget set
    assert budget_verdict(up(daily_usd=5), UpstreamSpend(today=5)).startswith(
        "budget: daily limit of $5.00 reached")
    assert budget_verdict(up(monthly_usd=50), UpstreamSpend(month=49.99)) is None
    at = datetime(2026, 11, 1, tzinfo=timezone.utc)
    balance = up(balance_usd=20, balance_set_at=at)
    assert budget_verdict(balance, UpstreamSpend(since_balance=20)) == \
        "budget: prepaid balance of $20.00 used up"
    assert balance_left(balance, UpstreamSpend(since_balance=19.5)) == 0.5
    assert balance_low(balance, UpstreamSpend(since_balance=18.5))  # $1.50 is under 10 %
    assert not balance_low(balance, UpstreamSpend(since_balance=10))
    assert not balance_low(balance, UpstreamSpend(since_balance=20))  # used up: that is "down"


def test_each_target_gets_its_own_shape():
    alert = events.upstream_down("m", "Mirror", "HTTP 529")
    url, headers, body = delivery({"type": "webhook", "url": "http://h/x", "secret": "s"}, alert,
                                  gateway="Home", language="en", now_iso="T")
    doc = json.loads(body)
    assert doc == {"event": "upstream_down", "time": "T", "gateway": "Home",
                   "message": "Upstream Mirror (m) left rotation: HTTP 529",
                   "data": {"upstream": "m", "reason": "HTTP 529"}}
    assert headers["x-ccgate-signature"] == "sha256=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
    url, _, body = delivery({"type": "telegram", "botToken": "1:t", "chatId": 5}, alert,
                            gateway="Home", language="zh", now_iso="T")
    assert url == "https://api.telegram.org/bot1:t/sendMessage"
    assert json.loads(body)["text"].startswith("[Home] 上游 Mirror")
    assert json.loads(delivery({"type": "feishu", "url": "http://f"}, alert, gateway="G",
                               language="en", now_iso="T")[2])["msg_type"] == "text"
    assert "content" in json.loads(delivery({"type": "dingtalk", "url": "http://d"}, alert,
                                            gateway="G", language="en", now_iso="T")[2])["text"]
    assert accepted("telegram", 200, b'{"ok": true}') and not accepted("telegram", 200, b'{"ok": false}')
    assert not accepted("wecom", 200, b'{"errcode": 93000}') and accepted("webhook", 204, b"")
    assert describe({"type": "telegram", "botToken": "1:secret", "chatId": 5}) == "telegram chat 5"
    assert describe({"type": "wecom", "url": "https://qyapi.weixin.qq.com/x?key=SECRET"}) == \
        "wecom qyapi.weixin.qq.com"


def test_limit_alerts_are_once_per_period():
    window = {"maxUSD": 5, "usedUSD": 4.1, "exceeded": False, "resetsAt": "2026-11-28T00:00:00+00:00"}
    warning = events.tenant_limit("alice", "Alice", "daily", window, reached=False, period_s=3600)
    assert warning.event == "tenant_limit_warning" and warning.dedupe_s == 3600
    assert warning.subject == "alice:daily:2026-11-28T00:00:00+00:00" and "82%" in warning.en
    sliding = events.tenant_limit("alice", "Alice", "window5h", window, reached=True, period_s=1)
    assert sliding.event == "tenant_limit_reached" and sliding.subject == "alice:window5h:"


def test_a_balance_counts_only_what_came_after_it_was_set(tmp_path):
    from datetime import date
    from zoneinfo import ZoneInfo
    from ccgate.upstreams.budget import spend_from_store
    from ccgate.usage.store_file import FileStore
    store, day = FileStore(tmp_path), date(2026, 11, 27)
    for rid, ts, cost in (("a", "2026-11-27T08:00:00.000Z", 1.0), ("b", "2026-11-27T12:00:00.000Z", 2.0)):
        store.append({"requestId": rid, "tenantId": "t", "timestamp": ts, "upstream": "m",
                      "upstreamCost": cost, "totalCost": cost, "statusCode": 200}, day)
    config = up(balance_usd=10, balance_set_at=datetime(2026, 11, 27, 10, tzinfo=timezone.utc))
    cache: dict = {}
    spend = spend_from_store(store, ["t"], {"m": config}, day, ZoneInfo("UTC"), cache)["m"]
    assert (spend.today, spend.since_balance) == (3.0, 2.0) and list(cache.values()) == [1.0]
    store.append({"requestId": "c", "tenantId": "t", "timestamp": "2026-11-27T13:00:00.000Z",
                  "upstream": "m", "upstreamCost": 4.0, "totalCost": 4.0, "statusCode": 200}, day)
    spend = spend_from_store(store, ["t"], {"m": config}, day, ZoneInfo("UTC"), cache)["m"]
    assert spend.since_balance == 6.0  # from the day's totals, the records not read again
