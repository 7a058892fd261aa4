"""The shape the README's Architecture section promises, read from the source (nothing imported):
small modules and functions with few parameters, pure modules that import no I/O library, a
leaf vocabulary (core/) that imports nothing of ccgate, no import cycle, few loose modules."""
import ast
import re

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "ccgate"
PURE = ["alerts/events.py", "alerts/messages.py", "core/client_ip.py", "config/edits.py", "openai/__init__.py", "openai/errors.py", "openai/messages.py", "openai/models.py",
        "openai/request.py", "openai/response.py", "openai/stream.py", "openai/responses_request.py", "openai/responses_output.py", "openai/responses_stream.py", "openai/events.py", "core/sse.py", "core/json_line.py", "http/head.py",
        "usage/extract.py", "usage/pricing.py", "usage/catalogue.py", "usage/price_facts.py", "upstreams/pool.py", "upstreams/strategies.py",
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


LOOSE = {"__init__.py", "gateway.py", "tenants.py"}  # the factory, the gateway, the tenant and call


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """ccgate module -> the ccgate modules it imports, anywhere in it (functions and
    TYPE_CHECKING blocks too: those are cycles as well, only deferred)."""
    modules = {module_name(p): p for p in SOURCES}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = (".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                        if node.level else "")
                target = ".".join(x for x in (base, node.module or "") if x)
                found = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            edges[name] |= {m for m in found if m in modules and m != name}
    return edges


def test_no_import_cycle():
    edges, state, cycle = import_graph(), {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycle.extend(trail[trail.index(nxt):] + [nxt])
                return True
            if nxt not in state and visit(nxt, trail + [nxt]):
                return True
        state[node] = "done"
        return False

    for start in sorted(edges):
        if start not in state and visit(start, [start]):
            break
    assert not cycle, " -> ".join(cycle)


def test_core_imports_nothing_of_ccgate():
    edges = import_graph()
    for name in edges:
        if name.startswith("ccgate.core"):
            assert {m for m in edges[name] if not m.startswith("ccgate.core")} == set(), name


def test_few_loose_modules():
    assert {p.name for p in PACKAGE.glob("*.py")} == LOOSE


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_take_at_most_eight_parameters(path):
    many = []
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = n.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
            count = len(names) + bool(a.vararg) + bool(a.kwarg) - (names[:1] in (["self"], ["cls"]))
            if count > 8:
                many.append(f"{n.name}: {count}")
    assert not many


def test_the_readme_lists_the_same_pure_modules():
    text = (ROOT / "README.md").read_text()
    listed = re.split(r"\)\s+import neither", text[text.index("The pure modules ("):])[0]
    named = set(re.findall(r"`([a-z_/]+(?:\.py|/))`", listed))
    expected = {m if not m.endswith("__init__.py") else m[:-len("__init__.py")] for m in PURE}
    expected = {m for m in expected if not (m.startswith("openai/") and m != "openai/")}
    assert named == expected
