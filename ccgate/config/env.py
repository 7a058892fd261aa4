"""``${NAME}`` in the config files: values read from the environment at load (and hot reload).

Only fields that hold a secret or an address may take a reference (``ENV_FIELDS``): keys,
URLs, tokens, passwords. A reference anywhere else (a name, a number, a model pattern) is a
config error, so a name written through the console can never pull a secret out of the
environment and show it to whoever reads names. Where a value came from the environment, error
messages name the variable, never the value.
"""
from __future__ import annotations

import os
import re
from typing import Any


def json_path(parts: list) -> str:
    """``['upstreams', 0, 'url']`` -> ``upstreams[0].url``; the root is ``$``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "$"


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Per file, the paths (``*`` for any list index) where ``${NAME}`` is read from the environment.
ENV_FIELDS = {
    "upstreams.json": {("upstreams", "*", "url"), ("upstreams", "*", "key")},
    "tenants.json": {("tenants", "*", "key"), ("tenants", "*", "keyHash")},
    "server.json": {("admin", "username"), ("admin", "password"), ("metrics", "token"),
                    ("storage", "url")} | {("alerts", "targets", "*", field) for field in
                                           ("url", "secret", "botToken", "chatId", "apiBase")},
}
WHERE_ALLOWED = "only in key, URL, token and password fields"


def _allowed(name: str, path: list) -> bool:
    shape = tuple("*" if isinstance(p, int) else p for p in path)
    return shape in ENV_FIELDS.get(name, ())


def expand_env(doc: Any, name: str, errors: list[str], expanded: dict[str, str],
               path: list | None = None) -> Any:
    """``doc`` with every allowed string value that is exactly ``${NAME}`` read from the
    environment; ``expanded`` gets ``json path -> variable`` for each.

    A variable that is not set, or a reference where none is allowed, is a config error naming
    the file, the JSON path and the variable.
    """
    path = path or []
    if isinstance(doc, dict):
        return {k: expand_env(v, name, errors, expanded, path + [k]) for k, v in doc.items()}
    if isinstance(doc, list):
        return [expand_env(v, name, errors, expanded, path + [i]) for i, v in enumerate(doc)]
    if isinstance(doc, str):
        ref = _ENV_REF.fullmatch(doc.strip())
        if ref and not _allowed(name, path):
            errors.append(f"{name}: {json_path(path)}: ${{{ref.group(1)}}} is read from the "
                          f"environment {WHERE_ALLOWED}; write the value itself here")
            return doc
        if ref:
            value = os.environ.get(ref.group(1))
            if value is None:
                errors.append(f"{name}: {json_path(path)}: environment variable {ref.group(1)} "
                              f"is not set")
                return doc
            expanded[json_path(path)] = ref.group(1)
            return value
    return doc


def holds_env_value(error_path: str, expanded: dict[str, str]) -> str | None:
    """The variable whose value sits at or below ``error_path``, if one does: a message about
    that part of the document must not show it."""
    for path, variable in expanded.items():
        if path == error_path or error_path == "$" or path.startswith(error_path + ".") \
                or path.startswith(error_path + "["):
            return variable
    return None
