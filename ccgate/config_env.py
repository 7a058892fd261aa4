"""``${NAME}`` in the config files: values read from the environment at load (and hot reload)."""
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


def expand_env(doc: Any, name: str, errors: list[str], path: list | None = None) -> Any:
    """``doc`` with every string value that is exactly ``${NAME}`` read from the environment.

    Secrets can then stay out of the files (and out of git); a variable that is not set is a
    config error naming the file, the JSON path and the variable.
    """
    path = path or []
    if isinstance(doc, dict):
        return {k: expand_env(v, name, errors, path + [k]) for k, v in doc.items()}
    if isinstance(doc, list):
        return [expand_env(v, name, errors, path + [i]) for i, v in enumerate(doc)]
    if isinstance(doc, str):
        ref = _ENV_REF.fullmatch(doc.strip())
        if ref:
            value = os.environ.get(ref.group(1))
            if value is None:
                errors.append(f"{name}: {json_path(path)}: environment variable {ref.group(1)} "
                              f"is not set")
            return value if value is not None else doc
    return doc
