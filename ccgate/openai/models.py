"""The model list the OpenAI surface shows a tenant (pure)."""
from __future__ import annotations

from ..core.wildcard import PatternSet

CREATED = 1_700_000_000  # a fixed, plausible epoch: OpenAI clients only display it


def model_list(aliases: dict[str, str], default_model: str | None, allowed: PatternSet,
               claude_models: tuple[str, ...]) -> list[dict]:
    """Aliases whose target the tenant may use, then every Claude model it may use: the
    configured targets and ``claude_models`` (the current catalogue)."""
    out = [{"id": alias, "object": "model", "created": CREATED, "owned_by": "ccgate"}
           for alias, target in aliases.items() if allowed.match(target)]
    seen = set(aliases)
    for model in (*aliases.values(), *([default_model] if default_model else []), *claude_models):
        if model not in seen and allowed.match(model):
            seen.add(model)
            out.append({"id": model, "object": "model", "created": CREATED, "owned_by": "anthropic"})
    return out
