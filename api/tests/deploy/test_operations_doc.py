"""docs/operations.md: every alarm and panel explained, every command as printed.

- each alarm the renders create points to a heading of ## Alarms that exists;
- each dashboard panel has its entry in ## Dashboard, and every entry is a panel;
- every $(P NAME) is a parameter deploy/render.py knows; every ecomind command and option
  printed exists; the blocks marked <!-- offline --> run, in a copy of the repository;
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.secrets.environment import DEPLOYED

from .rendering import REPO, CfnLoader, copy_repo, render

DOC = REPO / "docs/operations.md"
OFFLINE = re.compile(r"<!-- offline -->\n```bash\n(.*?)```", re.S)
HELPERS = re.compile(r"```bash\n(ENV=staging\nP\(\) .*?)```", re.S)


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


@pytest.mark.parametrize("env", DEPLOYED)
def test_every_alarm_points_to_its_heading(env: str) -> None:
    headings = set(re.findall(r"^### (\w+)$", section("Alarms"), re.M))
    resources = yaml.load(render(env, "deploy/cloudformation/alarms.yaml"), Loader=CfnLoader)["Resources"]
    descriptions = [r["Properties"]["AlarmDescription"] for r in resources.values() if r["Type"].endswith("::Alarm")]
    assert descriptions
    for description in descriptions:
        key = re.search(r"docs/operations\.md, Alarms, (\w+)\.$", description)
        assert key and key.group(1) in headings, description
    # The rotation-failure rule's events have their heading too.
    assert (
        "RotationFailed" in headings
        and "RotationFailed" in resources["RotationFailuresRule"]["Properties"]["EventPattern"]["detail"]["eventName"]
    )


def test_every_panel_has_its_entry_and_every_entry_is_a_panel() -> None:
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/secrets.json").read_text())
    titles = {p["title"] for p in dashboard["panels"] if p["type"] != "row"}
    rows = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    text = section("Dashboard")
    entries = set(re.findall(r"^- \*(.+?)\*:", text, re.M))
    assert entries == titles
    assert rows == set(re.findall(r"^\*\*(.+?)\*\*$", text, re.M))
    assert f'"{dashboard["title"]}"' in text


def test_every_parameter_the_doc_asks_for_exists() -> None:
    names = set(re.findall(r"\$\(P ([A-Z_]+)\)", DOC.read_text())) | set(
        re.findall(r"^P ([A-Z_]+)", DOC.read_text(), re.M)
    )
    assert len(names) > 10
    known = {line.split("=", 1)[0] for env in DEPLOYED for line in _list(env)}
    assert names <= known, f"docs/operations.md asks render.py for {sorted(names - known)}"


def _list(env: str) -> list[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "deploy/render.py"), env, "--list"], capture_output=True, text=True, check=True
    ).stdout.splitlines()


@pytest.mark.slow
def test_every_ecomind_command_and_option_printed_exists() -> None:
    commands = re.findall(r"\becomind ((?:secrets )?[a-z]+)((?: [^`\n|;]*)?)", DOC.read_text())
    assert len(commands) > 5
    for command, rest in commands:
        help_text = subprocess.run(
            [sys.executable, "-m", "app.cli", *command.split(), "--help"],
            capture_output=True,
            text=True,
            cwd=REPO / "api",
            env={**os.environ, "COLUMNS": "200"},
        )
        assert help_text.returncode == 0, f"ecomind {command}: {help_text.stderr}"
        for option in re.findall(r"(?<!\S)(--[a-z-]+)", rest):
            assert option in help_text.stdout, f"ecomind {command} has no {option}"


def test_the_offline_blocks_run_as_printed(tmp_path: Path) -> None:
    text = DOC.read_text()
    helpers = HELPERS.search(text)
    blocks = OFFLINE.findall(text)
    assert helpers and len(blocks) >= 2
    copy = copy_repo(tmp_path, ("api/app", "deploy"))
    for block in blocks:
        script = helpers.group(1) + block.replace("/tmp/", f"{tmp_path}/")
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=copy, capture_output=True, text=True)
        assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
    # The dashboard the copy wrote is the committed one: the doc's regeneration changes nothing.
    assert (copy / "deploy/grafana/dashboards/secrets.json").read_text() == (
        REPO / "deploy/grafana/dashboards/secrets.json"
    ).read_text()
