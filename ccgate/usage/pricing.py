"""Model prices and request cost in USD.

Where a price comes from, first found wins:
1. ``pricing.json`` ``modelPricing``: wildcard patterns, first match wins (the Node CCGate format,
   USD per 1K tokens; ``"unit": "1M"`` for per-million prices).
2. ``genai-prices``' offline snapshot, provider ``anthropic``, with its price variants
   (``processing: batch``, ``speed: fast``) where it has them.
3. The model's family (``opus``/``sonnet``/``haiku`` in its name): the newest model of that family
   in the snapshot.
4. ``pricing.json`` ``default``.
5. The most expensive Claude price known: an unknown model is never free.
Cases 3-5 log a warning once per model. Lookups are cached per model name.

Every dimension Anthropic bills is data here, not code per model: token rates (with long-context
tiers), web searches, the residency multiplier, fast-mode rates, the batch discount. Facts the
snapshot lacks are carried below with their source; ``pricing.json`` overrides each one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import lru_cache
from types import SimpleNamespace

from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from genai_prices.types import TieredPrices

from ..core.wildcard import PatternSet
from .catalogue import snapshot_models, version
from .extract import Usage
from .price_facts import (BATCH_MULTIPLIER, DEFAULT_RESERVE_OUTPUT_TOKENS, FAST_MULTIPLIERS,
                          GEO_MULTIPLIERS, LONG_CONTEXT, LONG_CONTEXT_FROM,
                          RESERVE_BYTES_PER_TOKEN, WEB_SEARCH_USD)

log = logging.getLogger("ccgate.pricing")

FAMILIES = ("opus", "sonnet", "haiku")
_RATE_FIELDS = ("input_mtok", "output_mtok", "cache_write_mtok", "cache_write_1h_mtok",
                "cache_read_mtok")

# One rate: USD per million tokens, either flat or [(from_input_tokens, price), ...] ascending.
Rate = float | tuple[tuple[int, float], ...]


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
    # A variant's own rates where the data has them ("fast", "batch"), replacing the multiple.
    variants: tuple[tuple[str, "Prices"], ...] = ()

    def variant(self, name: str) -> "Prices | None":
        return next((p for n, p in self.variants if n == name), None)

    def scaled(self, factor: float) -> "Prices":
        """Every token rate times ``factor`` (web searches unchanged)."""
        return replace(self, input=_scale(self.input, factor), output=_scale(self.output, factor),
                       cache_write=_scale(self.cache_write, factor),
                       cache_write_1h=_scale(self.cache_write_1h, factor),
                       cache_read=_scale(self.cache_read, factor), variants=())

    def for_request(self, speed: str | None, batch: bool, batch_multiplier: float) -> "Prices":
        """The rates a request pays: fast mode's (its own, else ``fast`` times the standard),
        then the batch price (its own, else ``batch_multiplier`` times)."""
        prices = self
        if speed == "fast":
            prices = self.variant("fast") or self.scaled(self.fast)
        if batch:
            own = self.variant("batch") if prices is self else None
            prices = own or prices.scaled(batch_multiplier)
        return prices

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


def cost_of(usage: Usage, prices: Prices, geo_multipliers: dict | None = None,
            batch: bool = False, batch_multiplier: float = BATCH_MULTIPLIER) -> Cost:
    """What ``usage`` costs at ``prices``: tokens at the fast-mode and batch rates that apply, at
    the tier the whole prompt (cache included) reaches, times the residency multiplier of where
    it ran, plus its web searches."""
    prompt = usage.input_tokens + usage.cache_creation_tokens + usage.cache_read_tokens
    r = Prices.rate
    one_hour = min(usage.cache_creation_1h_tokens, usage.cache_creation_tokens)
    five_min = usage.cache_creation_tokens - one_hour
    geo = (geo_multipliers or GEO_MULTIPLIERS).get(usage.inference_geo, 1.0) \
        if usage.inference_geo else 1.0
    prices = prices.for_request(usage.speed, batch, batch_multiplier)
    per_token = geo / 1e6
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


def _from_model_price(mp, source: str, model_id: str, variants=()) -> Prices:
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
                  fast=FAST_MULTIPLIERS.get(model_id, max(FAST_MULTIPLIERS.values())),
                  variants=tuple(_variants(mp, variants, source, model_id)))


_VARIANTS = {("speed", "fast"): "fast", ("processing", "batch"): "batch"}


def _variants(base, variants, source: str, model_id: str):
    """The snapshot's fast and batch prices; a rate a variant leaves out is the base's."""
    for variant in variants or ():
        name = next((n for (k, v), n in _VARIANTS.items() if variant.when == {k: v}), None)
        if name is not None:
            merged = {f: getattr(variant.prices, f, None) or getattr(base, f, None)
                      for f in (*_RATE_FIELDS, "web_searches_kcount")}
            yield name, _from_model_price(SimpleNamespace(**merged), f"{source} ({name})",
                                          model_id)


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


def _snapshot_price(model: str) -> Prices | None:
    try:
        calc = calc_price(PriceUsage(input_tokens=1, output_tokens=1), model_ref=model,
                          provider_id="anthropic")
    except LookupError:
        return None
    return _from_model_price(calc.model_price, f"genai-prices:{calc.model.id}", calc.model.id,
                             getattr(calc.model, "price_variants", None))


def family_price(family: str) -> Prices | None:
    """The price of the newest model of a family in the snapshot."""
    ids = [m for m in snapshot_models() if family in m]
    if not ids:
        return None
    return _snapshot_price(max(ids, key=version))


def most_expensive_price() -> Prices | None:
    prices = [p for p in (_snapshot_price(m) for m in snapshot_models()) if p is not None]
    return max(prices, key=lambda p: Prices.rate(p.output, 0), default=None)


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
        # One share for every model's batch results; unset: the data's own batch prices, else 50%.
        self._batch = doc.get("batchMultiplier")
        self.prices = lru_cache(maxsize=1024)(self._with_fast_mode)
        self.is_priced = lru_cache(maxsize=1024)(self._is_priced)

    def _with_fast_mode(self, model: str) -> Prices:
        prices, pattern = self._resolve(model), self._fast_patterns.first(model)
        if pattern is not None:  # the operator's multiple replaces the data's fast rates
            prices = replace(prices, fast=float(self._fast[pattern]),
                             variants=tuple(v for v in prices.variants if v[0] != "fast"))
        if self._batch is not None:
            prices = replace(prices, variants=tuple(v for v in prices.variants if v[0] != "batch"))
        return prices

    @property
    def batch_multiplier(self) -> float:
        return float(self._batch) if self._batch is not None else BATCH_MULTIPLIER

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

    def estimate(self, model: str, body_bytes: int, max_tokens: object, asks: dict | None = None,
                 batch: bool = False) -> float:
        """A request's worst case, held against spend limits while it runs: its body as input
        (a token per ``RESERVE_BYTES_PER_TOKEN`` bytes) plus all of its ``max_tokens`` as output
        (the upstream never writes more), at the fast-mode and residency prices the request
        ``asks`` for (its ``speed`` and ``inference_geo``)."""
        output = (max_tokens if type(max_tokens) is int and max_tokens > 0
                  else DEFAULT_RESERVE_OUTPUT_TOKENS)
        asks = asks or {}
        geo, speed = asks.get("inference_geo"), asks.get("speed")
        usage = Usage(input_tokens=body_bytes // RESERVE_BYTES_PER_TOKEN, output_tokens=output,
                      speed="fast" if speed == "fast" else None,
                      inference_geo=geo if isinstance(geo, str) else None)
        return cost_of(usage, self.prices(model), self.geo_multipliers, batch,
                       self.batch_multiplier).total

    def cost(self, model: str, usage: Usage, batch: bool = False) -> Cost:
        """What ``usage`` of ``model`` costs at list price; ``batch``: a Message Batch result."""
        return cost_of(usage, self.prices(model), self.geo_multipliers, batch, self.batch_multiplier)

    def describe(self, model: str) -> dict:
        """``model``'s rates per million tokens and where they come from, for the prices page."""
        p = self.prices(model)
        kind = ("pricing.json" if p.source.startswith("pricing.json") and self.is_priced(model)
                else "built-in" if self.is_priced(model) else "fallback")
        out = {"model": model, "source": p.source, "kind": kind,
               "warning": None if kind != "fallback" else (
                   f"no price of its own: charged as {p.source}; add a pricing.json entry")}
        out["webSearchPer1K"] = round(p.web_search * 1000, 6)
        fast, batch = p.for_request("fast", False, 1.0), p.for_request(None, True, self.batch_multiplier)
        out["fastModeMultiplier"] = round(Prices.rate(fast.output, 0) / Prices.rate(p.output, 0), 4) \
            if Prices.rate(p.output, 0) else p.fast
        out["batchMultiplier"] = round(Prices.rate(batch.output, 0) / Prices.rate(p.output, 0), 4) \
            if Prices.rate(p.output, 0) else self.batch_multiplier
        for name, rate in (("input", p.input), ("output", p.output),
                           ("cacheWrite5m", p.cache_write), ("cacheWrite1h", p.cache_write_1h),
                           ("cacheRead", p.cache_read)):
            out[f"{name}PerMTok"] = Prices.rate(rate, 0)
            if not isinstance(rate, float):
                out[f"{name}Tiers"] = [[start, price] for start, price in rate]
        return out
