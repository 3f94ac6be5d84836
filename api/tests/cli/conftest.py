"""What the CLI tests share: a printed fix run as printed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..conftest import ECOMIND


def run_fix(fix: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A printed fix, run exactly as printed (in bash, with ecomind on the PATH)."""
    path = f"{Path(ECOMIND).parent}:{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-c", fix], env={**env, "PATH": path}, cwd=cwd, capture_output=True, text=True, timeout=120
    )
