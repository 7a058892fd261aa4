"""The shape the README's Architecture section promises: small modules and functions, and pure
modules that import no I/O library (read from the source, nothing imported)."""
import ast

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "ccgate"
PURE = ["alerts/events.py", "alerts/messages.py", "core/client_ip.py", "config/edits.py", "openai/__init__.py", "openai/errors.py", "openai/messages.py", "openai/models.py",
        "openai/request.py", "openai/response.py", "openai/stream.py", "core/sse.py", "core/json_line.py",
        "usage/extract.py", "usage/pricing.py", "upstreams/pool.py", "upstreams/strategies.py",
        "proxy/chunked.py", "resources/endpoints.py", "resources/listing.py", "resources/refs.py",
        "shared/spend_rule.py"]
IO_LIBRARIES = {"flask", "gevent", "requests", "redis", "socket", "werkzeug", "urllib3"}
SOURCES = sorted(PACKAGE.rglob("*.py"))


def imported(path) -> set[str]:
    """Top-level names of every module ``path`` imports, following its relative imports."""
    seen, todo, names = set(), [path], set()
    while todo:
        current = todo.pop()
        if current in seen or not current.exists():
            continue
        seen.add(current)
        for node in ast.walk(ast.parse(current.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                base = current.parent
                for _ in range(node.level - 1):
                    base = base.parent
                parts = (node.module or "").split(".") if node.module else []
                target = base.joinpath(*parts)
                todo += [target.with_suffix(".py"), target / "__init__.py"]
                todo += [target / f"{a.name}.py" for a in node.names]
    return names


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_io(module):
    assert not imported(PACKAGE / module) & IO_LIBRARIES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 300
    long = [f"{n.name}: {n.end_lineno - n.lineno + 1} lines" for n in ast.walk(ast.parse(text))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > 50]
    assert not long
