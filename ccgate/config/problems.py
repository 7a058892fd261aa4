"""Values that load but are almost certainly wrong: placeholder URLs and keys, a pasted /v1, keys
short enough to guess. ``python cli.py validate`` fails on them; start-up warns; /health and the
dashboard show them. No message shows a secret."""
from __future__ import annotations

from .items import TENANTS_FILE, UPSTREAMS_FILE
from .settings import TenantConfig, UpstreamConfig

MIN_KEY_LENGTH = 16

def short_keys(tenants: tuple[TenantConfig, ...]) -> list[str]:
    """Tenant keys short enough to guess (the file's plain ``key``; a hash hides its length).
    The message never shows the key."""
    return [f"{TENANTS_FILE}: tenants[{i}].key: shorter than {MIN_KEY_LENGTH} characters, easy "
            f"to guess: give this tenant a new key (python cli.py keygen --tenant {t.id} --add)"
            for i, t in enumerate(tenants) if t.key is not None and len(t.key) < MIN_KEY_LENGTH]

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
