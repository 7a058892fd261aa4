"""Token extraction, pricing and the file store, without a server."""
import json
import logging
import os
from datetime import date

import pytest

from ccgate.usage.extract import StreamUsage, Usage, usage_from_body
from ccgate.config.settings import TenantLimits
from ccgate.usage.limits import LimitExceeded, Limiter
from ccgate.usage.pricing import PriceBook, cost_of, family_price
from ccgate.usage.dayfile import day_path
from ccgate.usage.store_file import FileStore
from tests.mock_wire import message, message_events, sse
from tests.helpers import FIXTURES

SSE_DIR = FIXTURES / "anthropic-sse"
NODE_DATA = FIXTURES / "ccgate-node" / "data"

GOLDEN = {
    "basic_response": (11, 6, 0, 0, "end_turn"),
    "tool_use_response": (377, 65, 0, 0, "tool_use"),
    "refusal_response": (20, 0, 0, 0, "refusal"),
    "incomplete_partial_json_response": (450, 124, 0, 0, "max_tokens"),
}


def extract(chunks) -> StreamUsage:
    s = StreamUsage()
    for c in chunks:
        s.feed(c)
    s.close()
    return s


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_recorded_streams_whole_and_split_at_every_byte(name):
    raw = (SSE_DIR / f"{name}.sse").read_bytes()
    inp, out, cw, cr, stop = GOLDEN[name]
    whole = extract([raw])
    assert (whole.usage.input_tokens, whole.usage.output_tokens, whole.usage.cache_creation_tokens,
            whole.usage.cache_read_tokens) == (inp, out, cw, cr)
    assert whole.stop_reason == stop
    for i in range(1, len(raw)):
        assert extract([raw[:i], raw[i:]]).usage == whole.usage


def thinking_and_cache_stream() -> bytes:
    msg = message("claude-sonnet-4-20250514", [{"type": "text", "text": "Done."}],
                  input_tokens=12, output_tokens=300, cache_creation=2000, cache_read=50000)
    events = message_events(msg)
    start = json.loads(events[0].split(b"data: ")[1])
    start["message"]["usage"]["cache_creation"] = {"ephemeral_5m_input_tokens": 500,
                                                   "ephemeral_1h_input_tokens": 1500}
    thinking = [
        sse("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "thinking", "thinking": ""}}),
        sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "thinking_delta", "thinking": "Hmm 你好"}}),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ]
    # The final message_delta repeats cumulative input-side counts, as current APIs do.
    final = sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                  "usage": {"input_tokens": 12, "cache_creation_input_tokens": 2000,
                                            "cache_read_input_tokens": 50000, "output_tokens": 300}})
    return b"".join([sse("message_start", start)] + thinking + events[1:-2] + [final, events[-1]])


def test_thinking_and_cache_with_1h_split():
    raw = thinking_and_cache_stream()
    whole = extract([raw]).usage
    assert whole == Usage(input_tokens=12, output_tokens=300, cache_creation_tokens=2000,
                          cache_read_tokens=50000, cache_creation_1h_tokens=1500)
    for i in range(1, len(raw)):
        assert extract([raw[:i], raw[i:]]).usage == whole


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_delta_characters_counted_the_same_whole_event_or_line_by_line(name):
    """The whole-event shortcut (bytes) and the line parser (text) count the same characters,
    also for text that is not ASCII."""
    delta = message_events(message("claude-sonnet-4", [{"type": "text", "text": "你好，世界 👋" * 50}],
                                   output_tokens=9))[2]
    assert extract([delta]).delta_chars == 8  # characters, not UTF-8 bytes
    raw = (SSE_DIR / f"{name}.sse").read_bytes() + delta
    whole = extract([raw])
    assert whole.delta_chars > 0
    assert extract(raw[i:i + 1] for i in range(len(raw))).delta_chars == whole.delta_chars


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_delta_characters_counted_the_same_one_event_per_chunk(name):
    """One event per chunk, as upstreams write them: the learned-prefix shortcut counts what the
    line parser counts, across content blocks, tool input and text that is not ASCII."""
    extra = message_events(message("claude-sonnet-4", [{"type": "text", "text": "ab 你好 " * 40},
                                                       {"type": "text", "text": "plain " * 40}],
                                   output_tokens=9))
    raw = (SSE_DIR / f"{name}.sse").read_bytes() + b"".join(extra)
    events = [e + b"\n\n" for e in raw.split(b"\n\n") if e.strip()]
    assert len(events) > 10
    per_event = extract(events)
    assert per_event.delta_chars == extract(raw[i:i + 1] for i in range(len(raw))).delta_chars
    assert per_event.usage == extract([raw]).usage


FINAL_DELTA = b'{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}'


@pytest.mark.parametrize("chunk", [
    b"event: ping\ndata: {}\n\nevent: message_delta\ndata: " + FINAL_DELTA + b"\n\n",  # two events
    b"event: ping\ndata: " + FINAL_DELTA + b"\revent: message_delta\n\n",  # a CR ends a line too
])
def test_an_event_that_carries_no_usage_is_skipped_only_when_alone(chunk):
    # Only a chunk that is one such event (two lines, no CR) skips the parser.
    s = extract([chunk])
    assert s.usage.output_tokens == 7 and s.stop_reason == "end_turn"


def test_interrupted_stream_bills_what_was_reported():
    raw = (SSE_DIR / "tool_use_response.sse").read_bytes()
    cut = raw[: raw.index(b"content_block_stop")]
    s = extract([cut])
    # message_start reported 1 output token; the text the deltas carried counts for more
    # (issue 15: never billed less than the text a cut stream carried).
    assert s.usage.input_tokens == 377 and s.usage.output_tokens == s.delta_chars // 4 > 1
    assert s.stop_reason is None


def test_error_event_is_noted():
    s = extract([sse("error", {"type": "error", "error": {"type": "overloaded_error",
                                                          "message": "Overloaded"}})])
    assert s.error_type == "overloaded_error"


def test_non_streaming_body():
    body = json.dumps(message("m", [], input_tokens=5, output_tokens=7, cache_read=9)).encode()
    assert usage_from_body(body) == Usage(5, 7, 0, 9)
    assert usage_from_body(b"<html>") == Usage()


# -- pricing ----------------------------------------------------------------------------------
def test_sonnet_4_hand_computed():
    book = PriceBook(None)
    # a 170,000-token prompt: under the 200,000 where long-context prices start
    u = Usage(input_tokens=50_000, output_tokens=10_000, cache_creation_tokens=20_000,
              cache_read_tokens=100_000)
    c = book.cost("claude-sonnet-4-20250514", u)
    assert c.input == pytest.approx(0.15)  # 0.05 M x $3
    assert c.output == pytest.approx(0.15)  # 0.01 M x $15
    assert c.cache_creation == pytest.approx(0.075)  # 0.02 M x $3.75
    assert c.cache_read == pytest.approx(0.03)  # 0.1 M x $0.30
    assert c.total == pytest.approx(0.405)


def test_one_hour_cache_writes_cost_more():
    book = PriceBook(None)
    u = Usage(cache_creation_tokens=100_000, cache_creation_1h_tokens=40_000)
    # 0.06 M at $3.75 + 0.04 M at $6 (2x input)
    assert book.cost("claude-sonnet-4-20250514", u).cache_creation == pytest.approx(0.225 + 0.24)


def test_node_pricing_json_per_1k_and_unit_1m():
    node = json.loads((FIXTURES / "ccgate-node/config/pricing.json").read_text())
    c = PriceBook(node).cost("claude-sonnet-4-20250514", Usage(1000, 500, 2000, 3000))
    # the Node CCGate's own figures for this usage (first record of its day file)
    assert (c.input, c.output, c.cache_creation, c.cache_read) == pytest.approx(
        (0.003, 0.0075, 0.0075, 0.0009))
    per_m = PriceBook({"unit": "1M", "modelPricing": {"my-model": {"input": 2, "output": 8}}})
    c = per_m.cost("my-model", Usage(1_000_000, 1_000_000, 1_000_000, 1_000_000))
    assert (c.input, c.output, c.cache_creation, c.cache_read) == pytest.approx((2, 8, 2.5, 0.2))


def test_unknown_models_are_never_free(caplog):
    book = PriceBook({"default": {"input": 0.001, "output": 0.002}})
    u = Usage(1_000_000, 1_000_000)
    with caplog.at_level(logging.WARNING, logger="ccgate.pricing"):
        fam = book.cost("claude-sonnet-99-experimental", u)
        book.cost("claude-sonnet-99-experimental", u)
        dflt = book.cost("mystery-model", u)
    assert fam.total == pytest.approx(cost_of(u, family_price("sonnet")).total) and fam.total > 0
    assert dflt.total == pytest.approx(1 + 2)  # pricing.json default, per 1K
    assert sum("claude-sonnet-99-experimental" in r.message for r in caplog.records) == 1
    no_default = PriceBook(None).cost("mystery-model", u)
    assert no_default.total >= PriceBook(None).cost("claude-opus-4-1", u).total


# -- store -----------------------------------------------------------------------------------
def rec(tenant="t", cost=0.5, tokens=10, status=200, **kw):
    return {"requestId": os.urandom(4).hex(), "tenantId": tenant, "timestamp": "2026-11-26T01:00:00.000Z",
            "model": kw.pop("model", "claude-sonnet-4"), "inputTokens": tokens, "outputTokens": tokens,
            "cacheCreationTokens": 0, "cacheReadTokens": 0, "totalTokens": 2 * tokens,
            "totalCost": cost, "statusCode": status, "errorType": None if status < 400 else "api_error",
            **kw}


DAY = date(2026, 11, 26)


def test_store_append_totals_and_incremental_reads(tmp_path):
    store = FileStore(tmp_path)
    for _ in range(3):
        store.append(rec(), DAY)
    store.append(rec(status=529, cost=0, tokens=0), DAY)
    t = store.day_totals("t", DAY)
    assert (t.requests, t.errors, t.inputTokens, t.costUSD) == (4, 1, 30, 1.5)
    other = FileStore(tmp_path)  # another process's view of the same directory
    other.append(rec(cost=1.0), DAY)
    assert store.day_totals("t", DAY).requests == 5
    assert store.day_totals("t", DAY).costUSD == 2.5
    lines = day_path(tmp_path / "usage", "t", DAY).read_bytes().splitlines()
    assert len(lines) == 5 and all(json.loads(line)["tenantId"] == "t" for line in lines)
    assert store.recent(DAY, 2)[0]["totalCost"] in (0.5, 1.0)


def test_the_days_first_writer_never_reads_the_day_back(tmp_path, monkeypatch):
    """A process that wrote a day file from its first line keeps its totals as it writes: a
    limit or budget check later (the watchdog's, 30 s in) reads nothing, where it used to parse
    the whole day in one go while requests waited."""
    store = FileStore(tmp_path)
    for _ in range(50):
        store.append(rec(), DAY)
    parsed = []
    real_loads = json.loads
    monkeypatch.setattr("ccgate.usage.dayfile.json.loads",
                        lambda text: parsed.append(1) or real_loads(text))
    assert store.day_totals("t", DAY).requests == 50 and not parsed
    FileStore(tmp_path).append(rec(cost=2.0), DAY)  # another process appends: read only that
    assert store.day_totals("t", DAY).costUSD == 27.0 and len(parsed) == 1


def test_torn_last_line_is_skipped_and_closed(tmp_path, caplog):
    store = FileStore(tmp_path)
    store.append(rec(), DAY)
    path = day_path(tmp_path / "usage", "t", DAY)
    with open(path, "ab") as f:
        f.write(b'{"requestId":"torn","tenantId":"t","tot')  # a crash mid-write
    assert store.day_totals("t", DAY).requests == 1  # the partial line is not read yet
    store.append(rec(cost=2.0), DAY)
    with caplog.at_level(logging.WARNING):
        t = FileStore(tmp_path).day_totals("t", DAY)
    assert (t.requests, t.costUSD) == (2, 2.5)
    assert "damaged usage line" in caplog.text
    assert store.day_totals("t", DAY).requests == 2


def test_node_ccgate_data_dir_is_read(tmp_path):
    import shutil
    shutil.copytree(NODE_DATA, tmp_path / "data")
    t = FileStore(tmp_path / "data").day_totals("default", DAY)
    assert t.requests == 29
    assert t.costUSD == pytest.approx(0.121975)
    assert t.by_model["unknown"].requests >= 1
    assert t.errors >= 1


L = TenantLimits.from_doc  # limits as tenants.json writes them


def test_limiter_daily_monthly_rpm_concurrency(tmp_path):
    store = FileStore(tmp_path)
    limiter = Limiter(store, "UTC")
    now = 1795651200.0 + 3600  # 2026-11-26T01:00:00Z
    store.append(rec(cost=4.0), DAY)
    a = limiter.admit("t", L({"daily": {"maxUSD": 5}}), now)
    assert a.daily_remaining_usd == pytest.approx(1.0)
    limiter.release(a)
    store.append(rec(cost=1.0), DAY)
    with pytest.raises(LimitExceeded) as exc:
        limiter.admit("t", L({"daily": {"maxUSD": 5}}), now)
    assert "daily spending limit of $5.00" in exc.value.message
    assert "2026-11-27T00:00:00+00:00" in exc.value.message
    assert exc.value.retry_after_s == 23 * 3600
    with pytest.raises(LimitExceeded, match="monthly"):
        limiter.admit("t", L({"monthly": {"maxUSD": 5}}), now)
    slots = [limiter.admit("u", L({"rpm": 3}), now + i) for i in range(3)]
    with pytest.raises(LimitExceeded) as exc:
        limiter.admit("u", L({"rpm": 3}), now + 10)
    assert exc.value.retry_after_s == 50
    assert limiter.admit("u", L({"rpm": 3}), now + 60.5)  # the window slid
    held = [limiter.admit("v", L({"concurrency": 2}), now) for _ in range(2)]
    with pytest.raises(LimitExceeded, match="concurrency"):
        limiter.admit("v", L({"concurrency": 2}), now)
    limiter.release(held[0])
    assert limiter.admit("v", L({"concurrency": 2}), now)
    assert slots


def test_reservations_hold_room_until_released_and_a_refusal_holds_nothing(tmp_path):
    limiter = Limiter(FileStore(tmp_path), "UTC")
    now, daily = 1795651200.0 + 3600, L({"daily": {"maxUSD": 1}, "concurrency": 2})
    held = lambda: sum(lease[0] for lease in limiter.counters.ledger.leases.get("t", {}).values())
    first = limiter.admit("t", daily, now, reserve_usd=0.6)
    with pytest.raises(LimitExceeded) as exc:
        limiter.admit("t", daily, now, reserve_usd=0.6)  # 0.6 held + 0.6 does not fit $1
    assert exc.value.limit == "in_flight" and "up to $0.60 more" in exc.value.message
    second = limiter.admit("t", daily, now, reserve_usd=0.3)  # 0.9 fits
    limiter.release(first, spent=0.5)
    assert held() == pytest.approx(0.3)
    free = limiter.admit("t", daily, now, spend=False)  # count_tokens: a slot, no spend
    with pytest.raises(LimitExceeded, match="concurrency"):  # passes the spend check, not this
        limiter.admit("t", daily, now, reserve_usd=0.3)
    assert held() == pytest.approx(0.3)  # the refused request holds nothing
    for a in (second, free):
        limiter.release(a)
    assert held() == 0


def test_a_request_alone_is_served_however_large_it_is(tmp_path):
    """Claude Code's max_tokens 32000 (about $0.48 on Sonnet) for a tenant with $0.10 left."""
    store = FileStore(tmp_path)
    store.append(rec(cost=0.9), DAY)
    limiter = Limiter(store, "UTC")
    now, daily = 1795651200.0 + 3600, L({"daily": {"maxUSD": 1}})
    alone = limiter.admit("t", daily, now, reserve_usd=0.52)
    with pytest.raises(LimitExceeded, match="nearly reached"):
        limiter.admit("t", daily, now, reserve_usd=0.001)  # nothing fits beside it
    limiter.release(alone, spent=0.2)
    with pytest.raises(LimitExceeded, match="daily spending limit of \\$1.00 reached"):
        store.append(rec(cost=0.2), DAY)
        limiter.admit("t", daily, now, reserve_usd=0.001)


def test_day_boundary_follows_timezone(tmp_path):
    limiter = Limiter(FileStore(tmp_path), "Asia/Shanghai")
    # 2026-11-26T17:00Z is already the 27th in Shanghai
    assert limiter.local_now(1795651200.0 + 17 * 3600).date() == date(2026, 11, 27)


def test_usage_record_line_keeps_the_node_format():
    from ccgate.usage.record import UsageRecord
    rec = UsageRecord(requestId="r", tenantId="t", timestamp="2026-11-26T06:33:57.378Z",
                      model="claude-sonnet-4", inputTokens=3, totalTokens=3, statusCode=200)
    line = json.loads(rec.to_json())
    assert list(line)[:16] == ["requestId", "tenantId", "timestamp", "model", "inputTokens",
                               "outputTokens", "cacheCreationTokens", "cacheReadTokens",
                               "totalTokens", "inputCost", "outputCost", "cacheCreationCost",
                               "cacheReadCost", "totalCost", "duration", "statusCode"]
    assert "interrupted" not in line and "provisional" not in line
    rec.interrupted, rec.cacheCreation1hTokens = "client", 7
    assert rec.to_dict()["interrupted"] == "client" and rec.to_dict()["cacheCreation1hTokens"] == 7


def test_a_stream_cut_before_its_usage_is_billed_for_the_text_it_carried():
    text = "x" * 4000
    msg = message("claude-sonnet-4", [{"type": "text", "text": text}], output_tokens=1000)
    events = message_events(msg)
    cut = [e for e in events if b"message_delta" not in e and b"message_stop" not in e]
    s = StreamUsage()
    for e in cut:
        s.feed(e)
    s.close()
    assert 950 <= s.usage.output_tokens <= 1100  # ~4 characters a token, not message_start's 1
    whole = StreamUsage()
    for e in events:
        whole.feed(e)
    whole.close()
    assert whole.usage.output_tokens == 1000  # reported usage wins when it arrived
