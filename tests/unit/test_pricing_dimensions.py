"""What Anthropic bills beyond tokens, priced as its pricing page says (issue 31, in part).
Source: Anthropic's pricing page (platform.claude.com/docs/en/about-claude/pricing), read
2026-12-06: web search $10 per 1,000 searches on every model; data residency (inference_geo
"us") 1.1x on every token category on Opus 4.6+ and Sonnet 4.6+. Each figure below is worked out
by hand from those prices."""
import pytest

from ccgate.usage.extract import Usage, usage_from_body
from ccgate.usage.pricing import PriceBook

SONNET_45, OPUS_46 = "claude-sonnet-4-5-20250929", "claude-opus-4-6"


def test_fifty_web_searches_are_fifty_cents():
    cost = PriceBook(None).cost(SONNET_45, Usage(input_tokens=1000, output_tokens=1000,
                                                 web_search_requests=50))
    assert cost.web_search == pytest.approx(0.50)  # 50 x $10 / 1000
    assert cost.total == pytest.approx(1000 * 3 / 1e6 + 1000 * 15 / 1e6 + 0.50)


def test_us_residency_is_ten_percent_on_every_token_category():
    prices = PriceBook(None)
    usage = dict(input_tokens=1000, output_tokens=1000, cache_creation_tokens=1000,
                 cache_read_tokens=1000)
    plain = prices.cost(OPUS_46, Usage(**usage))
    us = prices.cost(OPUS_46, Usage(**usage, inference_geo="us"))
    # Opus 4.6: $5 in, $25 out, $6.25 cache write (5 min), $0.50 cache read, per million
    assert plain.total == pytest.approx((5 + 25 + 6.25 + 0.5) * 1000 / 1e6)
    assert us.total == pytest.approx(plain.total * 1.1)
    assert us.cache_read == pytest.approx(plain.cache_read * 1.1)
    assert prices.cost(OPUS_46, Usage(**usage, inference_geo="global")).total == plain.total


def test_pricing_json_sets_the_search_price_and_the_residency_multiplier():
    book = PriceBook({"unit": "1M", "modelPricing": {"*sonnet*": {
        "input": 3, "output": 15, "webSearch": 20}}, "inferenceGeo": {"us": 1.2}})
    cost = book.cost(SONNET_45, Usage(input_tokens=1_000_000, web_search_requests=10,
                                      inference_geo="us"))
    assert cost.web_search == pytest.approx(0.20) and cost.input == pytest.approx(3.6)
    assert book.describe(SONNET_45)["webSearchPer1K"] == 20


def test_searches_and_geo_are_read_from_the_usage():
    usage = usage_from_body(b'{"usage": {"input_tokens": 5, "output_tokens": 7, '
                            b'"server_tool_use": {"web_search_requests": 3}, '
                            b'"inference_geo": "us"}}')
    assert (usage.web_search_requests, usage.inference_geo) == (3, "us")


def test_fast_mode_on_opus_46_is_six_times():
    prices = PriceBook(None)
    usage = dict(input_tokens=10_000, output_tokens=2_000)
    plain = prices.cost(OPUS_46, Usage(**usage)).total
    fast = prices.cost(OPUS_46, Usage(**usage, speed="fast")).total
    assert fast == pytest.approx((10_000 * 30 + 2_000 * 150) / 1e6)  # $30 / $150 per million
    assert fast == pytest.approx(6 * plain)
    assert prices.cost(OPUS_46, Usage(**usage, speed="standard")).total == plain
    book = PriceBook({"fastMode": {"claude-opus-4-6*": 2}})
    assert book.cost(OPUS_46, Usage(**usage, speed="fast")).total == pytest.approx(2 * plain)


def test_sonnet_4_over_200k_prompt_tokens_bills_the_whole_request_at_the_long_context_rate():
    prices = PriceBook(None)
    long = prices.cost("claude-sonnet-4-20250514", Usage(input_tokens=300_000, output_tokens=1000))
    assert long.input == pytest.approx(300_000 * 6 / 1e6)  # $1.80, was billed $0.90
    assert long.output == pytest.approx(1000 * 22.5 / 1e6)
    short = prices.cost("claude-sonnet-4-20250514", Usage(input_tokens=100_000, output_tokens=1000))
    assert short.input == pytest.approx(0.30) and short.output == pytest.approx(0.015)


def test_batch_results_cost_half_the_standard_price():
    # Pricing page, "Batch processing" (2026-12-06): 50% of standard. Sonnet 4.5: $3 / $15 per
    # million standard, so 1,000 in + 1,000 out is $0.018, and $0.009 in a batch.
    prices = PriceBook(None)
    one = Usage(input_tokens=1000, output_tokens=1000)
    assert prices.cost(SONNET_45, one).total == pytest.approx(0.018)
    assert prices.cost(SONNET_45, one, batch=True).total == pytest.approx(0.009)
    assert 4 * prices.cost(SONNET_45, one, batch=True).total == pytest.approx(0.036)
    # The snapshot's own batch prices where it has them (Opus 4.6: $2.50 / $12.50)
    assert prices.cost(OPUS_46, one, batch=True).total == pytest.approx((2.5 + 12.5) / 1000)
    # pricing.json batchMultiplier sets one share for every model
    assert PriceBook({"batchMultiplier": 0.6}).cost(SONNET_45, one, batch=True).total \
        == pytest.approx(0.018 * 0.6)
    assert prices.describe(SONNET_45)["batchMultiplier"] == 0.5


def test_fast_mode_uses_a_models_own_fast_prices_where_listed():
    # Pricing page, "Fast mode" (2026-12-06): Opus 5.5 fast is $8 input / $40 output per million.
    cost = PriceBook(None).cost("claude-opus-5-5", Usage(input_tokens=1_000_000,
                                                         output_tokens=100_000, speed="fast"))
    assert (cost.input, cost.output) == (pytest.approx(8.0), pytest.approx(4.0))


def test_the_catalogue_is_the_price_data_less_retired_models():
    from datetime import date
    from ccgate.openai.models import model_list
    from ccgate.core.wildcard import PatternSet
    from ccgate.usage.catalogue import current_models, retired_since
    today = date(2026, 12, 6)
    current = current_models(today)
    assert "claude-opus-4-8" in current and "claude-sonnet-5-5" in current
    assert not {"claude-sonnet-4-0", "claude-opus-4-1", "claude-3-5-haiku-latest"} & set(current)
    # a retirement takes effect on its day
    assert "claude-opus-4-1" in current_models(date(2026, 8, 4))
    assert retired_since("claude-sonnet-4-20250514", today) == "2026-06-15"
    listed = [m["id"] for m in model_list({}, None, PatternSet(["*"]), current)]
    assert listed == list(current)


def test_validate_warns_of_retired_and_unpriced_alias_targets(tmp_path):
    import json
    from ccgate.config.load import load_config
    from tests.helpers import write_config
    config_dir = write_config(tmp_path, [], tenants=[], server={"openai": {
        "models": {"gpt-4o": "claude-sonnet-4-20250514", "gpt-4.1": "claude-sonnet-5-5",
                   "mine": "my-own-model"}, "defaultModel": "claude-3-5-haiku-20241022"}})
    warnings = "\n".join(load_config(config_dir).warnings)
    assert ("openai.models.gpt-4o: claude-sonnet-4-20250514 was retired on 2026-06-15" in warnings
            and "such as claude-sonnet-5-5" in warnings)
    assert "openai.defaultModel: claude-3-5-haiku-20241022 was retired" in warnings
    assert "openai.models.mine: my-own-model has no price of its own" in warnings
    assert "gpt-4.1" not in warnings
    example = json.loads(open("config/server.json.example").read())
    (tmp_path / "server.json").write_text(json.dumps(example))
    assert not [w for w in load_config(tmp_path).warnings
                if "was retired" in w or "no price of its own" in w]
