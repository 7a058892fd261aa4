"""Values that load but are almost certainly wrong: placeholder URLs and keys, a pasted /v1, keys
short enough to guess. ``python cli.py validate`` fails on them; start-up warns; /health and the
dashboard show them. No message shows a secret."""
from __future__ import annotations

from datetime import date

from ..usage.catalogue import current_models, retired_since
from ..usage.pricing import PriceBook
from .items import PRICING_FILE, SERVER_FILE, TENANTS_FILE, UPSTREAMS_FILE
from .settings import AdminConfig, OpenAIConfig, TenantConfig, UpstreamConfig

MIN_KEY_LENGTH = 16
KNOWN_DEFAULT_PASSWORDS = ("changeme", "your-secure-password", "admin", "password")


def default_password(admin: AdminConfig) -> list[str]:
    """A warning when the dashboard is open with a well-known password."""
    if admin.enabled and (admin.password or "changeme") in KNOWN_DEFAULT_PASSWORDS:
        return ["!!! admin.password is a well-known default: anyone can open the dashboard. "
                "Set a strong password (python cli.py hash-password) !!!"]
    return []


def short_keys(tenants: tuple[TenantConfig, ...]) -> list[str]:
    """Tenant keys short enough to guess (the file's plain ``key``; a hash hides its length).
    The message never shows the key."""
    return [f"{TENANTS_FILE}: tenants[{i}].key: shorter than {MIN_KEY_LENGTH} characters, easy "
            f"to guess: give this tenant a new key (python cli.py keygen --tenant {t.id} --add)"
            for i, t in enumerate(tenants) if t.key is not None and len(t.key) < MIN_KEY_LENGTH]

def configured_models(openai: OpenAIConfig,
                      tenants: tuple[TenantConfig, ...]) -> list[tuple[str, str]]:
    """Every model the config names as a target, with where: ``(place, model)``."""
    found = [(f"{SERVER_FILE}: openai.models.{alias}", model)
             for alias, model in openai.models.items()]
    if openai.default_model:
        found.append((f"{SERVER_FILE}: openai.defaultModel", openai.default_model))
    for i, t in enumerate(tenants):
        found += [(f"{TENANTS_FILE}: tenants[{i}].modelRewrite.{pattern}", model)
                  for pattern, model in t.model_rewrite if "*" not in model]
    return found


def model_warnings(openai: OpenAIConfig, tenants: tuple[TenantConfig, ...],
                   pricing_doc: dict | None, today: date) -> list[str]:
    """Models the config points at that Anthropic retired, or that have no price of their own."""
    prices, newest = PriceBook(pricing_doc), current_models(today)
    out = []
    for place, model in configured_models(openai, tenants):
        retired = retired_since(model, today)
        if retired:
            family = next((f for f in ("opus", "sonnet", "haiku") if f in model), "")
            instead = next((m for m in newest if family in m), newest[0] if newest else "")
            out.append(f"{place}: {model} was retired on {retired}: requests for it fail; "
                       f"point it at a current model such as {instead}")
        elif not prices.is_priced(model):
            out.append(f"{place}: {model} has no price of its own (charged as "
                       f"{prices.prices(model).source}): add a {PRICING_FILE} entry for it")
    return out


def upstream_problems(upstreams: tuple[UpstreamConfig, ...],
                      expanded: dict[str, str] | None = None) -> list[str]:
    """Upstream URLs and keys that are almost certainly wrong (placeholders, a pasted /v1); a
    URL from the environment is not shown."""
    problems = []
    for i, u in enumerate(upstreams):
        show = f"upstreams[{i}].url" not in (expanded or {})
        for field_name, problem in (("url", u.url_problem(show)), ("key", u.key_problem())):
            if problem:
                problems.append(f"{UPSTREAMS_FILE}: upstreams[{i}].{field_name}: {problem}")
    return problems
