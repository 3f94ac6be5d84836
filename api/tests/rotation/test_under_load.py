"""A short run of bench/rotation_under_load.py: no failed request while secrets rotate.

The full run (60 s, 20 clients, 10 database and 3 JWT rotations) is `make bench-rotation`;
its table is in docs/benchmarks.md. This asserts behaviour only, never timings.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[3] / "bench" / "rotation_under_load.py"


def test_api_keeps_serving_through_three_password_rotations_and_one_jwt_rotation() -> None:
    spec = importlib.util.spec_from_file_location("rotation_under_load", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rotation_under_load"] = module
    spec.loader.exec_module(module)
    result = module.run(seconds=10, clients=6, db_rotations=3, jwt_rotations=1)
    assert result.sent > 100  # the load really ran
    assert result.failed == 0, result.failures
    assert result.writes_acknowledged == result.rows_found > 0
