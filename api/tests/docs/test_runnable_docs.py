"""Run every shell block the docs mark as runnable (<!-- runnable -->) against the local stack.

Each block runs with bash -euo pipefail in a fresh folder holding .env.example, with
ecomind on the PATH, AWS pointed at moto, and DATABASE_URL at a real PostgreSQL.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import Aws, Database
from ..support.environment import child_env

REPO = Path(__file__).resolve().parents[3]
DOCS = [REPO / "docs" / "secrets.md", REPO / "docs" / "troubleshooting.md"]
BLOCK = re.compile(r"<!-- runnable -->\n```bash\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for n, match in enumerate(BLOCK.finditer(doc.read_text()), 1):
            found.append((f"{doc.name}#{n}", match.group(1)))
    return found


def test_the_docs_have_runnable_blocks() -> None:
    assert len(blocks()) >= 4


@pytest.mark.slow
@pytest.mark.parametrize(("where", "script"), blocks(), ids=[b[0] for b in blocks()])
def test_runnable_block(where: str, script: str, aws: Aws, database: Database, tmp_path: Path) -> None:
    shutil.copy(REPO / ".env.example", tmp_path / ".env.example")
    env = child_env(keep=("HOME", "LANG"))
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env.update(aws.env)
    env["DATABASE_URL"] = database.url()
    env["JWT_SECRET"] = "j" * 48
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{where} failed:\n{script}\n{result.stdout}\n{result.stderr}"
