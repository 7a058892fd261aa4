"""What Anthropic bills that the ``genai-prices`` snapshot does not say, as data with its source.

Each value names the page it comes from and when it was read; ``pricing.json`` overrides each one
(README, "Pricing"). Nothing here is code per model: ``pricing.py`` applies it to every model.
"""
from __future__ import annotations

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
# Message Batches: results cost this share of the standard price (Anthropic's pricing page,
# "Batch processing", 2026-12), where the snapshot has no batch prices of its own for the model.
BATCH_MULTIPLIER = 0.5
# Long context (a prompt of more than 200,000 tokens, cache included) where the snapshot has no
# tiers: Sonnet 4 with the 1M-context beta bills the whole request at $6 input / $22.50 output
# per million, cache at the same 2x (Anthropic's pricing page, "Long context pricing", 2026-12).
LONG_CONTEXT = {"claude-sonnet-4-0": {"input_mtok": 6.0, "output_mtok": 22.5,
                                      "cache_write_mtok": 7.5, "cache_write_1h_mtok": 12.0,
                                      "cache_read_mtok": 0.6}}
LONG_CONTEXT_FROM = 200_000


# Reservations assume this output when a request names no usable max_tokens (the API requires it
# on /v1/messages; a mirror may not): the largest any current Claude model writes in one answer.
DEFAULT_RESERVE_OUTPUT_TOKENS = 64_000
# Request bytes per input token, rounded down: JSON text and code run at 3.5-4.5, CJK near 3.
RESERVE_BYTES_PER_TOKEN = 3

# Retired model ids (Anthropic's model deprecations page,
# platform.claude.com/docs/en/about-claude/model-deprecations, read 2026-12-06), keyed by the
# snapshot's model id, with the retirement date. The snapshot keeps prices for retired models
# (old records still price) but says nothing of retirement: a model retired here is left out of
# the built-in model list, and an alias pointing at it gets a warning. Add a line when
# Anthropic retires one; a date in the future takes effect on that day.
RETIRED = {
    "claude-v1": "2024-11-06",
    "claude-2": "2025-07-21",
    "claude-3-sonnet": "2025-07-21",
    "claude-3-5-sonnet": "2025-10-28",
    "claude-3-opus-latest": "2026-01-05",
    "claude-3-7-sonnet-latest": "2026-02-19",
    "claude-3-5-haiku-latest": "2026-02-19",
    "claude-3-haiku": "2026-04-20",
    "claude-opus-4-0": "2026-06-15",
    "claude-sonnet-4-0": "2026-06-15",
    "claude-opus-4-1": "2026-08-05",
}
