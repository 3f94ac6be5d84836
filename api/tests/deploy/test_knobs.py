"""Every ECOMIND_* name in deploy/ is a knob the API reads.

A deployment that sets ECOMIND_METRIC_HOST (one letter off) deploys fine and changes
nothing: the API reads ECOMIND_METRICS_HOST. So every ECOMIND_* name written anywhere
under deploy/ (templates, scripts, comments, the generated dashboard), and every one a
rendered task definition or manifest sets, must be a knob of app.settings.knobs.KNOBS, or one of
the knobs issue 15 adds to app/settings/knobs.py (below), which the API reads from then on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from app.secrets.environment import DEPLOYED
from app.settings.knobs import KNOBS

from .rendering import REPO, render

KNOB = re.compile(r"\bECOMIND_[A-Z0-9_]*[A-Z0-9]")
# The knobs of issue 15 (metrics listener, EMF lines, staleness, readiness, log format):
# fields of app.settings.knobs.Tuning from that issue on; listed here until KNOBS has them.
KNOWN = set(KNOBS.values())
SKIP = {"node_modules", "__pycache__"}


def unknown_knobs(text: str) -> set[str]:
    return set(KNOB.findall(text)) - KNOWN


def deploy_files() -> list[Path]:
    return [
        path
        for path in sorted((REPO / "deploy").rglob("*"))
        if path.is_file() and not SKIP & set(path.relative_to(REPO).parts) and path.suffix != ".pyc"
    ]


def test_every_ecomind_name_under_deploy_is_a_knob() -> None:
    found = {path.relative_to(REPO): unknown_knobs(path.read_text(errors="replace")) for path in deploy_files()}
    assert not {str(path): names for path, names in found.items() if names}
    # The scan saw the knobs the renders set (a scan that read nothing would pass too).
    assert any("ECOMIND_METRICS_HOST" in path.read_text() for path in deploy_files())


@pytest.mark.parametrize("env", DEPLOYED)
def test_rendered_task_definition_and_manifests_set_only_knobs(env: str) -> None:
    container = json.loads(render(env, "deploy/ecs/api.taskdef.json"))["containerDefinitions"][0]
    names = {e["name"] for e in container["environment"]}
    for doc in yaml.safe_load_all(render(env, "deploy/k8s")):
        if doc and doc["kind"] == "Deployment":
            pod = doc["spec"]["template"]["spec"]
            names |= {e["name"] for c in pod["containers"] + pod["initContainers"] for e in c.get("env", [])}
    knobs = {name for name in names if name.startswith("ECOMIND_")}
    assert knobs and knobs <= KNOWN


def test_a_misspelt_knob_is_reported() -> None:
    text = '{"name": "ECOMIND_METRIC_HOST", "value": "0.0.0.0"}  # and ECOMIND_EMF_INTERVAL'
    assert unknown_knobs(text) == {"ECOMIND_METRIC_HOST"}
    assert unknown_knobs(f"{KNOBS['max_body_bytes']}=1") == set()
