"""What the deployment tests share: deploy/render.py run as an operator runs it, a YAML
loader for CloudFormation's tags, a copy of the repository to change a fact in, and a
module loaded from a file of such a copy."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

__all__ = ["REPO", "CfnLoader", "copy_repo", "load_module", "render"]

REPO = Path(__file__).resolve().parents[3]


def render(env: str, template: str, root: Path = REPO) -> str:
    """``python3 deploy/render.py ENV TEMPLATE`` in ``root`` (the repository or a copy)."""
    return subprocess.run(
        [sys.executable, str(root / "deploy/render.py"), env, str(root / template)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


class CfnLoader(yaml.SafeLoader):
    """CloudFormation YAML: a short-form tag (!Ref, !Sub, !GetAtt...) becomes {tag: value}."""


def _construct(loader: yaml.Loader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: _construct(loader, node)})


def copy_repo(tmp_path: Path, folders: Sequence[str], files: Sequence[str] = ()) -> Path:
    """A copy of these parts of the repository in ``tmp_path / "repo"`` (no caches, no node_modules)."""
    copy = tmp_path / "repo"
    for part in folders:
        shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    for part in files:
        shutil.copy(REPO / part, copy / part)
    return copy


def load_module(path: Path) -> ModuleType:
    """The module in ``path`` (e.g. a changed copy of the model), under a name of its own."""
    spec = importlib.util.spec_from_file_location(f"changed_{path.stem}_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module
