#!/usr/bin/env python3
"""Validate ECS task definitions against botocore's RegisterTaskDefinition model.

Usage: validate_taskdefs.py FILE...  (rendered JSON, as deploy.sh registers it)

botocore's ParamValidator checks names, types, required members and unknown keys;
it does not check enum values, so the few enums that matter are checked here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import botocore.session
from botocore.validate import ParamValidator

ENUMS = {
    "networkMode": {"bridge", "host", "awsvpc", "none"},
    "requiresCompatibilities": {"EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"},
    "logDriver": {
        "awslogs",
        "fluentd",
        "gelf",
        "json-file",
        "journald",
        "logentries",
        "splunk",
        "syslog",
        "awsfirelens",
    },
}


def problems(document: dict) -> list[str]:
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(document, shape)
    found = [report.generate_report()] if report.has_errors() else []
    if document.get("networkMode") not in ENUMS["networkMode"]:
        found.append(f"networkMode {document.get('networkMode')!r} is not one of {sorted(ENUMS['networkMode'])}")
    for item in document.get("requiresCompatibilities", []):
        if item not in ENUMS["requiresCompatibilities"]:
            found.append(f"requiresCompatibilities {item!r} is unknown")
    for container in document.get("containerDefinitions", []):
        driver = container.get("logConfiguration", {}).get("logDriver")
        if driver is not None and driver not in ENUMS["logDriver"]:
            found.append(f"{container.get('name')}: logDriver {driver!r} is unknown")
        for secret in container.get("secrets", []):
            if not str(secret.get("valueFrom", "")).startswith(("arn:aws:secretsmanager:", "arn:aws:ssm:")):
                found.append(f"{container.get('name')}: secret {secret.get('name')} valueFrom is not an ARN")
    return found


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        try:
            document = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed = True
            continue
        for problem in problems(document):
            print(f"{path}: {problem}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
