"""Model prices and request cost in USD.

Where a price comes from, first found wins:
1. ``pricing.json`` ``modelPricing``: wildcard patterns, first match wins (the Node CCGate format,
   USD per 1K tokens; ``"unit": "1M"`` for per-million prices).
2. ``genai-prices``' offline snapshot, provider ``anthropic``.
3. The model's family (``opus``/``sonnet``/``haiku`` in its name): the newest model of that family
   in the snapshot.
4. ``pricing.json`` ``default``.
5. The most expensive Claude price known: an unknown model is never free.
Cases 3-5 log a warning once per model. Lookups are cached per model name.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from functools import lru_cache

from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from genai_prices.data_snapshot import find_provider_by_id, get_snapshot
from genai_prices.types import TieredPrices

from ..core.wildcard import PatternSet
from .extract import Usage

log = logging.getLogger("ccgate.pricing")

FAMILIES = ("opus", "sonnet", "haiku")
_RATE_FIELDS = ("input_mtok", "output_mtok", "cache_write_mtok", "cache_write_1h_mtok",
                "cache_read_mtok")

# One rate: USD per million tokens, either flat or [(from_input_tokens, price), ...] ascending.
Rate = float | tuple[tuple[int, float], ...]


# USD per server-side web search: $10 per 1,000 on every Claude model (Anthropic's pricing page,
# "Web search tool", 2026-12; genai-prices carries it as web_searches_kcount). A search that
# errors is not billed, and the usage then does not count it.
WEB_SEARCH_USD = 10 / 1000
# Data residency: inference pinned to a region costs this multiple of every token category on
# the models that offer it (Opus 4.6+, Sonnet 4.6+; Anthropic's pricing page, "Data residency",
# 2026-12). The answer's usage.inference_geo says where it ran; "global" costs list price.
GEO_MULTIPLIERS = {"us": 1.1}
# Fast mode (usage.speed "fast"): every token category at this multiple of the model's price.
# Opus 4.6: $30 / $150 per million, 6x (Anthropic's pricing page, "Fast mode", 2026-12). A model
# with no fast price of its own is charged the highest known multiple (never less than it may
# cost); pricing.json "fastMode" sets one per model pattern.
FAST_MULTIPLIERS = {"claude-opus-4-6": 6.0}
# Long context (a prompt of more than 200,000 tokens, cache included) where the snapshot has no
# tiers: Sonnet 4 with the 1M-context beta bills the whole request at $6 input / $22.50 output
# per million, cache at the same 2x (Anthropic's pricing page, "Long context pricing", 2026-12).
LONG_CONTEXT = {"claude-sonnet-4-0": {"input_mtok": 6.0, "output_mtok": 22.5,
                                      "cache_write_mtok": 7.5, "cache_write_1h_mtok": 12.0,
                                      "cache_read_mtok": 0.6}}
LONG_CONTEXT_FROM = 200_000


@dataclass(frozen=True)
class Prices:
    """Per-million-token rates for one model, and where they came from."""
    input: Rate
    output: Rate
    cache_write: Rate
    cache_write_1h: Rate
    cache_read: Rate
    source: str
    web_search: float = WEB_SEARCH_USD  # USD per search
    fast: float = max(FAST_MULTIPLIERS.values())  # fast mode's multiple of the token prices

    @staticmethod
    def rate(rate: Rate, prompt_tokens: int) -> float:
        """The rate that applies to a request whose whole prompt has ``prompt_tokens`` tokens."""
        if isinstance(rate, float):
            return rate
        applied = rate[0][1]
        for start, price in rate:
            if prompt_tokens >= start:
                applied = price
        return applied


@dataclass(frozen=True)
class Cost:
    input: float
    output: float
    cache_creation: float
    cache_read: float
    web_search: float = 0.0

    @property
    def total(self) -> float:
        return self.input + self.output + self.cache_creation + self.cache_read + self.web_search


def cost_of(usage: Usage, prices: Prices, geo_multipliers: dict | None = None) -> Cost:
    """What ``usage`` costs at ``prices``: tokens at the tier the whole prompt (cache included)
    reaches, times the residency multiplier of where it ran, plus its web searches."""
    prompt = usage.input_tokens + usage.cache_creation_tokens + usage.cache_read_tokens
    r = Prices.rate
    one_hour = min(usage.cache_creation_1h_tokens, usage.cache_creation_tokens)
    five_min = usage.cache_creation_tokens - one_hour
    geo = (geo_multipliers or GEO_MULTIPLIERS).get(usage.inference_geo, 1.0) \
        if usage.inference_geo else 1.0
    per_token = geo * (prices.fast if usage.speed == "fast" else 1.0) / 1e6
    return Cost(
        input=usage.input_tokens * r(prices.input, prompt) * per_token,
        output=usage.output_tokens * r(prices.output, prompt) * per_token,
        cache_creation=(five_min * r(prices.cache_write, prompt)
                        + one_hour * r(prices.cache_write_1h, prompt)) * per_token,
        cache_read=usage.cache_read_tokens * r(prices.cache_read, prompt) * per_token,
        web_search=usage.web_search_requests * prices.web_search,
    )


def _rate(value) -> Rate:
    if isinstance(value, TieredPrices):
        return ((0, float(value.base)),) + tuple((t.start, float(t.price)) for t in value.tiers)
    return float(value or 0)


def _from_model_price(mp, source: str, model_id: str) -> Prices:
    rates = {f: _rate(getattr(mp, f, None)) for f in _RATE_FIELDS}
    for field, high in LONG_CONTEXT.get(model_id, {}).items():
        if isinstance(rates[field], float):  # the snapshot's own tiers win when it has them
            rates[field] = ((0, rates[field]), (LONG_CONTEXT_FROM, high))
    input_rate = rates["input_mtok"]
    # Anthropic's 1-hour cache writes cost 2x input; 5-minute writes 1.25x.
    write_1h = rates["cache_write_1h_mtok"] or _scale(input_rate, 2.0)
    searches = getattr(mp, "web_searches_kcount", None)
    return Prices(input=input_rate, output=rates["output_mtok"],
                  cache_write=rates["cache_write_mtok"] or _scale(input_rate, 1.25),
                  cache_write_1h=write_1h, cache_read=rates["cache_read_mtok"], source=source,
                  web_search=float(searches) / 1000 if searches is not None else WEB_SEARCH_USD,
                  fast=FAST_MULTIPLIERS.get(model_id, max(FAST_MULTIPLIERS.values())))


def _scale(rate: Rate, factor: float) -> Rate:
    if isinstance(rate, float):
        return rate * factor
    return tuple((start, price * factor) for start, price in rate)


def _from_node_entry(entry: dict, per: float, source: str) -> Prices:
    """A ``pricing.json`` entry (USD per ``per`` tokens) as per-million rates."""
    scale = 1e6 / per
    inp = float(entry["input"]) * scale
    write = float(entry["cacheCreation"]) * scale if "cacheCreation" in entry else inp * 1.25
    return Prices(
        input=inp, output=float(entry["output"]) * scale, cache_write=write,
        cache_write_1h=float(entry["cacheCreation1h"]) * scale if "cacheCreation1h" in entry
        else inp * 2.0,
        cache_read=float(entry["cacheRead"]) * scale if "cacheRead" in entry else inp * 0.1,
        source=source,
        web_search=float(entry["webSearch"]) / 1000 if "webSearch" in entry else WEB_SEARCH_USD)


def _version(model_id: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", model_id))


def _snapshot_price(model: str) -> Prices | None:
    try:
        calc = calc_price(PriceUsage(input_tokens=1, output_tokens=1), model_ref=model,
                          provider_id="anthropic")
    except LookupError:
        return None
    return _from_model_price(calc.model_price, f"genai-prices:{calc.model.id}", calc.model.id)


@lru_cache(maxsize=1)
def _snapshot_models() -> tuple[str, ...]:
    provider = find_provider_by_id(get_snapshot().providers, "anthropic")
    return tuple(m.id for m in provider.models) if provider else ()


def family_price(family: str) -> Prices | None:
    """The price of the newest model of a family in the snapshot."""
    ids = [m for m in _snapshot_models() if family in m]
    if not ids:
        return None
    return _snapshot_price(max(ids, key=_version))


def most_expensive_price() -> Prices | None:
    prices = [p for p in (_snapshot_price(m) for m in _snapshot_models()) if p is not None]
    return max(prices, key=lambda p: Prices.rate(p.output, 0), default=None)


# Reservations assume this output when a request names no usable max_tokens (the API requires it
# on /v1/messages; a mirror may not): the largest any current Claude model writes in one answer.
DEFAULT_RESERVE_OUTPUT_TOKENS = 64_000
# Request bytes per input token, rounded down: JSON text and code run at 3.5-4.5, CJK near 3.
RESERVE_BYTES_PER_TOKEN = 3


class PriceBook:
    """Resolves a model name to its prices, following the order in the module docstring."""

    def __init__(self, pricing_doc: dict | None):
        doc = pricing_doc or {}
        self._per = 1e6 if doc.get("unit") == "1M" else 1e3
        self._overrides = doc.get("modelPricing") or {}
        self._patterns = PatternSet(list(self._overrides))
        self._default = doc.get("default")
        self.geo_multipliers = {**GEO_MULTIPLIERS, **(doc.get("inferenceGeo") or {})}
        self._fast = doc.get("fastMode") or {}  # model pattern -> multiple of the token prices
        self._fast_patterns = PatternSet(list(self._fast))
        self.prices = lru_cache(maxsize=1024)(self._with_fast_mode)
        self.is_priced = lru_cache(maxsize=1024)(self._is_priced)

    def _with_fast_mode(self, model: str) -> Prices:
        prices, pattern = self._resolve(model), self._fast_patterns.first(model)
        return replace(prices, fast=float(self._fast[pattern])) if pattern is not None else prices

    def _resolve(self, model: str) -> Prices:
        pattern = self._patterns.first(model)
        if pattern is not None:
            return _from_node_entry(self._overrides[pattern], self._per, f"pricing.json:{pattern}")
        found = _snapshot_price(model)
        if found is not None:
            return found
        lowered = model.lower()
        family = next((f for f in FAMILIES if f in lowered), None)
        fallback = family_price(family) if family else None
        if fallback is None and self._default:
            fallback = _from_node_entry(self._default, self._per, "pricing.json:default")
        if fallback is None:
            fallback = most_expensive_price()
        log.warning("no price known for model %r: charging %s", model, fallback.source)
        return fallback

    def _is_priced(self, model: str) -> bool:
        """Whether ``model`` has a price of its own (``pricing.json`` or the table), not a fallback."""
        return self._patterns.first(model) is not None or _snapshot_price(model) is not None

    def estimate(self, model: str, body_bytes: int, max_tokens: object) -> float:
        """A request's worst case, held against spend limits while it runs: its body as input
        (a token per ``RESERVE_BYTES_PER_TOKEN`` bytes) plus all of its ``max_tokens`` as output
        (the upstream never writes more)."""
        output = (max_tokens if type(max_tokens) is int and max_tokens > 0
                  else DEFAULT_RESERVE_OUTPUT_TOKENS)
        usage = Usage(input_tokens=body_bytes // RESERVE_BYTES_PER_TOKEN, output_tokens=output)
        return cost_of(usage, self.prices(model)).total

    def cost(self, model: str, usage: Usage) -> Cost:
        return cost_of(usage, self.prices(model), self.geo_multipliers)

    def describe(self, model: str) -> dict:
        """``model``'s rates per million tokens and where they come from, for the prices page."""
        p = self.prices(model)
        kind = ("pricing.json" if p.source.startswith("pricing.json") and self.is_priced(model)
                else "built-in" if self.is_priced(model) else "fallback")
        out = {"model": model, "source": p.source, "kind": kind,
               "warning": None if kind != "fallback" else (
                   f"no price of its own: charged as {p.source}; add a pricing.json entry")}
        out["webSearchPer1K"] = round(p.web_search * 1000, 6)
        out["fastModeMultiplier"] = p.fast
        for name, rate in (("input", p.input), ("output", p.output),
                           ("cacheWrite5m", p.cache_write), ("cacheWrite1h", p.cache_write_1h),
                           ("cacheRead", p.cache_read)):
            out[f"{name}PerMTok"] = Prices.rate(rate, 0)
            if not isinstance(rate, float):
                out[f"{name}Tiers"] = [[start, price] for start, price in rate]
        return out
