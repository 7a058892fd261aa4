"""The model list the OpenAI surface shows a tenant (pure)."""
from __future__ import annotations

from ..core.wildcard import PatternSet

# Claude API model ids offered besides the configured aliases and their targets.
CLAUDE_MODELS = (
    "claude-opus-4-5-20251101",
    "claude-opus-4-1-20250805",
    "claude-opus-4-20250514",
    "claude-sonnet-4-5-20250929",
    "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-20250219",
    "claude-haiku-4-5-20251001",
    "claude-3-5-haiku-20241022",
)
CREATED = 1_700_000_000  # a fixed, plausible epoch: OpenAI clients only display it


def model_list(aliases: dict[str, str], default_model: str | None, allowed: PatternSet) -> list[dict]:
    """Aliases whose target the tenant may use, then every Claude model it may use."""
    out = [{"id": alias, "object": "model", "created": CREATED, "owned_by": "ccgate"}
           for alias, target in aliases.items() if allowed.match(target)]
    seen = set(aliases)
    for model in (*aliases.values(), *([default_model] if default_model else []), *CLAUDE_MODELS):
        if model not in seen and allowed.match(model):
            seen.add(model)
            out.append({"id": model, "object": "model", "created": CREATED, "owned_by": "anthropic"})
    return out
