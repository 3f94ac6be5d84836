"""An honest public surface: each module's ``__all__`` is exactly what other modules import.

As httpx checks its exported members: a name in ``__all__`` that nobody imports is dead
(or a facade nobody uses), and a name imported from a module but missing from its
``__all__`` is a reach into its private parts. Importers are every Python file of the
project: app/, alembic/, tests/, bench/ and deploy/. Entry points that are named in
strings rather than imported (console script, ASGI app, Lambda handlers) count as used.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

from app.secrets.environment import SECRETS

API = Path(__file__).resolve().parents[1]
REPO = API.parent
SOURCES = [API / "app", API / "alembic", API / "tests", REPO / "bench", REPO / "deploy"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(API).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def entry_points() -> set[tuple[str, str]]:
    found = set()
    scripts = tomllib.loads((API / "pyproject.toml").read_text())["project"]["scripts"]
    for target in scripts.values():
        module, _, name = target.partition(":")
        found.add((module, name))
    for spec in SECRETS:  # Lambda handlers, named by the environment model
        module, _, name = spec.rotation_handler.rpartition(".")
        found.add((module, name))
    found.add(("app.main", "app"))  # uvicorn app.main:app (the API without the prefetch)
    found.add(("app.asgi", "app"))  # uvicorn app.asgi:app (Dockerfile, ecomind dev)
    found.add(("app.api.serving", "BoundedH11Protocol"))  # uvicorn --http app.api.serving:BoundedH11Protocol
    return found


def _resolve(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - node.level + 1] if node.level > 1 else base
    return ".".join([*base, node.module] if node.module else base)


def imports() -> dict[str, set[str]]:
    """module -> names other modules import from it (``from m import x``, or ``m.x`` after ``import m``)."""
    used: dict[str, set[str]] = defaultdict(set)
    modules = submodules()
    for root in SOURCES:
        for path in root.rglob("*.py"):
            if ".venv" in path.parts:
                continue
            importer = module_name(path) if path.is_relative_to(API) else None
            package = importer if path.name == "__init__.py" else (importer or "").rpartition(".")[0]
            tree = ast.parse(path.read_text())
            aliases: dict[str, str] = {}  # local name -> module it stands for
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    module = _resolve(node, package)
                    if not module.startswith("app") or module == importer:
                        continue
                    for alias in node.names:
                        if f"{module}.{alias.name}" in modules:
                            aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
                        else:
                            used[module].add(alias.name)
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.startswith("app") and alias.asname:
                            aliases[alias.asname] = alias.name
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                    used[aliases[node.value.id]].add(node.attr)
    return used


def declared() -> dict[str, set[str]]:
    found = {}
    for path in (API / "app").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
                    found[module_name(path)] = {ast.literal_eval(e) for e in node.value.elts}  # type: ignore[attr-defined]
    return found


def submodules() -> set[str]:
    return {module_name(p) for p in (API / "app").rglob("*.py")}


def test_every_module_declares_its_public_names() -> None:
    modules = {module_name(p) for p in (API / "app").rglob("*.py") if p.name not in ("__main__.py",)}
    missing = sorted(m for m in modules - set(declared()) if not m.endswith("alembic"))
    assert not missing, f"modules without __all__: {missing}"


def test_all_is_exactly_what_other_modules_import() -> None:
    used, public, mods, entries = imports(), declared(), submodules(), entry_points()
    problems = []
    for module, names in sorted(public.items()):
        imported = {n for n in used.get(module, set()) if f"{module}.{n}" not in mods}
        unused = sorted(n for n in names - imported if (module, n) not in entries)
        reached = sorted(imported - names)
        if unused:
            problems.append(f"{module}: in __all__ but imported by no other module: {unused}")
        if reached:
            problems.append(f"{module}: imported by others but not in __all__: {reached}")
    assert not problems, "\n".join(problems)
