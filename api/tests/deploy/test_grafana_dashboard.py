"""The Grafana dashboard: generated from the telemetry catalog, covering it, naming nothing else.

Its validation against Grafana's published schema is test_validators.py's ("grafana").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import app.telemetry as catalog

REPO = Path(__file__).resolve().parents[3]
GENERATOR = REPO / "deploy/grafana/dashboard.py"
COMMITTED = REPO / "deploy/grafana/dashboards/secrets.json"
# PromQL words that are not metrics: aggregations, functions (followed by "("), operators.
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "or", "and", "unless", "bool", "offset"}


def metrics_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges: [$__rate_interval], [5m]
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    words = re.findall(r"(?<![\w$])[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()", expr)
    return set(words) - PROMQL_WORDS


def generated() -> str:
    return subprocess.run(
        [sys.executable, str(GENERATOR), "--stdout"], capture_output=True, text=True, check=True
    ).stdout


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found += [panel, *panel.get("panels", [])]
    return [p for p in found if p["type"] != "row"]


def test_the_committed_dashboard_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == generated(), "run: python3 deploy/grafana/dashboard.py"
    assert subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True).returncode == 0


def test_check_fails_when_the_committed_file_is_stale(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "deploy/grafana", copy / "deploy/grafana", ignore=shutil.ignore_patterns("node_modules"))
    shutil.copy(REPO / "deploy/render.py", copy / "deploy/render.py")  # the catalog's loader
    (copy / "api/app").mkdir(parents=True)
    shutil.copy(REPO / "api/app/telemetry.py", copy / "api/app/telemetry.py")
    stale = copy / "deploy/grafana/dashboards/secrets.json"
    stale.write_text(stale.read_text().replace("Stale secrets", "Stale"))
    result = subprocess.run(
        [sys.executable, str(copy / "deploy/grafana/dashboard.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 1 and "python3 deploy/grafana/dashboard.py" in result.stderr


def test_every_metric_of_the_catalog_is_queried_and_no_other() -> None:
    dashboard = json.loads(COMMITTED.read_text())
    queried: set[str] = set()
    for panel in panels(dashboard):
        for target in panel["targets"]:
            queried |= metrics_in(target["expr"])
    catalog_names = {metric.name for metric in catalog.METRICS}
    assert not queried - catalog_names, f"queries name metrics outside the catalog: {sorted(queried - catalog_names)}"
    assert not catalog_names - queried, f"catalog metrics no panel shows: {sorted(catalog_names - queried)}"


@pytest.mark.parametrize(
    ("expr", "metrics"),
    [
        ("sum by (variable, cause) (rate(ecomind_a_total[$__rate_interval]))", {"ecomind_a_total"}),
        ('sum(increase(ecomind_b_total{result="throttled"}[$__range])) or vector(0)', {"ecomind_b_total"}),
        ("max(up) / on (job) group_left (x) ecomind_c", {"up", "ecomind_c"}),
        ("max by (variable, region) (ecomind_d) == 1", {"ecomind_d"}),
    ],
)
def test_metrics_in_finds_what_a_query_selects(expr: str, metrics: set[str]) -> None:
    assert metrics_in(expr) == metrics


def test_panels_use_the_datasource_variable_and_the_catalog_units() -> None:
    dashboard = json.loads(COMMITTED.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    by_metric = {name: panel for panel in panels(dashboard) for t in panel["targets"] for name in metrics_in(t["expr"])}
    for gauge in (catalog.SINCE_REFRESH, catalog.VALUE_AGE):
        assert by_metric[gauge.name]["fieldConfig"]["defaults"]["unit"] == gauge.unit
    # The operator sees the stale threshold on the panel of the seconds since refresh.
    assert by_metric[catalog.SINCE_REFRESH.name] is by_metric[catalog.STALE_THRESHOLD.name]
    # Throttled Secrets Manager calls are singled out.
    throttled = [
        p
        for p in panels(dashboard)
        if catalog.SM_CALLS.name in json.dumps(p["targets"]) and "throttled" in json.dumps(p)
    ]
    assert len(throttled) >= 2
