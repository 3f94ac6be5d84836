"""The package's floors (app/__init__.py) hold: every import runs down, none sideways, no cycle.

The test reads the source (every ``import``/``from`` statement, at any depth: an import
inside a function counts), so it sees what a run that never reaches that function would
miss.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# The floors of app/__init__.py's docstring: a module may import from a lower floor only.
FLOORS = {
    "telemetry": 0,
    "secrets": 1,
    "settings": 2,
    "data": 3,
    "observe": 3,
    "auth": 4,
    "api": 5,
    "rotation": 5,
    "prefetch": 5,
    "cli": 6,
    "main": 7,
    "asgi": 8,
}


def _module(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The app modules ``path`` imports (``from app.x import y`` counts ``app.x.y`` when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name == "app" or a.name.startswith("app.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "app" or node.module.startswith("app."):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if _exists(sub) else node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.add("relative import")
    return found


def _exists(module: str) -> bool:
    base = APP.parent / module.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _floor_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _graph(root: Path = APP) -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in sorted(root.rglob("*.py"))}


def _violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in graph.items():
        own = _floor_of(module)
        for target in sorted(targets):
            if target == "relative import":
                found.append(f"{module} uses a relative import: write the absolute module so the floors show")
                continue
            theirs = _floor_of(target)
            if own is None or theirs is None or own == theirs:
                continue
            if own not in FLOORS or theirs not in FLOORS:
                found.append(f"{module} -> {target}: {own if own not in FLOORS else theirs} has no floor in FLOORS")
            elif FLOORS[theirs] >= FLOORS[own]:
                way = "up" if FLOORS[theirs] > FLOORS[own] else "sideways"
                found.append(f"{module} (floor {FLOORS[own]}) imports {target} (floor {FLOORS[theirs]}): {way}")
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    edges = defaultdict(set)
    for module, targets in graph.items():
        edges[module] |= {t for t in targets if t in graph and t != module}
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_every_import_runs_down_the_floors() -> None:
    assert _violations(_graph()) == []


def test_no_module_imports_itself_back_through_others() -> None:
    # Package __init__ files re-export nothing but cli's main; a cycle through them counts too.
    assert _cycles(_graph()) == []


def test_every_package_says_what_it_owns_and_what_it_may_import() -> None:
    for init in sorted(APP.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        if init.parent.name == "routes":
            continue  # one module per resource; the api package speaks for it
        assert len(doc.split()) >= 15, f"{init.relative_to(APP.parent)} does not say what it owns"
        if init.parent != APP:
            where = init.relative_to(APP.parent)
            assert re.search(r"(?m)^May import:", doc), f"{where} does not say what it may import"


def test_the_floors_here_are_the_floors_in_the_package_docstring() -> None:
    doc = ast.get_docstring(ast.parse((APP / "__init__.py").read_text())) or ""
    listed = {m.group(2).rstrip("/"): int(m.group(1)) for m in re.finditer(r"(?m)^\s+(\d)\s+(\w+/?)\s", doc)}
    assert listed == FLOORS
    on_disk = {p.stem if p.is_file() else p.name for p in APP.iterdir() if p.suffix == ".py" or p.is_dir()}
    on_disk -= {"__init__", "__pycache__"}
    assert on_disk == set(FLOORS), "a module or package of app/ has no floor"


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("secrets/base.py", "from app.data.engine import make_engine\n", "up"),
        ("data/engine.py", "from app.observe import metrics\n", "sideways"),
        ("auth/limits.py", "from .users import ActiveUsers\n", "relative import"),
    ],
)
def test_the_check_sees_an_import_that_breaks_the_floors(
    tmp_path: Path, module: str, source: str, expected: str
) -> None:
    fake = tmp_path / "app" / module
    fake.parent.mkdir(parents=True)
    fake.write_text(source)
    graph = {_module_in(tmp_path, fake): _imports(fake)}
    assert any(expected in v for v in _violations(graph))


def test_the_check_sees_a_cycle() -> None:
    graph = {"app.auth.a": {"app.auth.b"}, "app.auth.b": {"app.auth.c"}, "app.auth.c": {"app.auth.a"}}
    assert _cycles(graph) == [["app.auth.a", "app.auth.b", "app.auth.c", "app.auth.a"]]


def _module_in(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts)
