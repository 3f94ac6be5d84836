"""The CLI reads ENVIRONMENT, SECRETS_PREFIX, SECRETS_REPLICA_REGIONS and AWS_REGION in one place.

app/cli/shell.py reads them when a command asks; every other module of the CLI asks it.
The test reads the source, so a branch no run reaches counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[2] / "app" / "cli"
NAMES = {"ENVIRONMENT", "SECRETS_PREFIX", "SECRETS_REPLICA_REGIONS", "AWS_REGION"}


def reads(source: str) -> list[str]:
    """Each read of one of NAMES from the process environment in ``source``, as ``line N: NAME``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        key = None
        if isinstance(node, ast.Call) and node.args and ast.unparse(node.func) in ("os.environ.get", "os.getenv"):
            key = node.args[0]
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and ast.unparse(node.value) == "os.environ"
        ):
            key = node.slice
        if isinstance(key, ast.Constant) and key.value in NAMES:
            found.append(f"line {node.lineno}: {key.value}")
    return found


def test_only_the_shell_module_reads_the_environment_of_the_secrets() -> None:
    found = {
        str(path.relative_to(CLI)): hits
        for path in sorted(CLI.rglob("*.py"))
        if path.name != "shell.py" and (hits := reads(path.read_text()))
    }
    assert found == {}, "read them through app.cli.shell.shell()"


@pytest.mark.parametrize(
    "source",
    [
        'import os\nname = os.environ.get("ENVIRONMENT") or ""\n',
        'import os\nprefix = os.getenv("SECRETS_PREFIX")\n',
        'import os\nregion = os.environ["AWS_REGION"]\n',
    ],
)
def test_the_check_sees_a_read_elsewhere(source: str) -> None:
    assert reads(source)


def test_a_write_is_no_read() -> None:
    assert reads('import os\nos.environ["ENVIRONMENT"] = "staging"\n') == []
