"""The Claude models there are today: the price data's models less those Anthropic retired.

The ``genai-prices`` snapshot lists every model it prices, retired ones included (old records
still need their price); ``price_facts.RETIRED`` says which are gone and since when.
"""
from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from genai_prices.data_snapshot import find_provider_by_id, get_snapshot

from .price_facts import RETIRED


@lru_cache(maxsize=1)
def _provider():
    return find_provider_by_id(get_snapshot().providers, "anthropic")


@lru_cache(maxsize=1)
def snapshot_models() -> tuple[str, ...]:
    """Every Anthropic model id the price data knows."""
    provider = _provider()
    return tuple(m.id for m in provider.models) if provider else ()


@lru_cache(maxsize=1024)
def price_model(model: str) -> str | None:
    """The price data's id for ``model`` (``claude-sonnet-4-20250514`` is ``claude-sonnet-4-0``)."""
    provider = _provider()
    found = provider.find_model(model) if provider else None
    return found.id if found is not None else None


def version(model_id: str) -> tuple[int, ...]:
    """The numbers in a model id, to order ids newest last."""
    return tuple(int(n) for n in re.findall(r"\d+", model_id))


def retired_since(model: str, today: date) -> str | None:
    """The date ``model`` was retired, when that day has come; else None."""
    when = RETIRED.get(price_model(model) or model)
    return when if when is not None and date.fromisoformat(when) <= today else None


def current_models(today: date) -> tuple[str, ...]:
    """The ids of the Claude models that can be called today, as the price data names them
    (the API takes these aliases), newest first."""
    live = [m for m in snapshot_models() if m.startswith("claude-") and m.count("-") >= 2
            and not retired_since(m, today)]
    return tuple(sorted(live, key=lambda m: (version(m), m), reverse=True))
