"""The rotation functions' CloudWatch Embedded Metric Format lines: one per step run.

For each step Secrets Manager invokes a function for (``createSecret``, ``setSecret``,
``testSecret``, ``finishSecret``), :func:`handle` runs it and prints one EMF line on
stdout, which Lambda sends to CloudWatch Logs and CloudWatch turns into metrics:
``RotationStepSeconds`` (how long the step took) and, when the step failed,
``RotationStepFailures`` = 1, which the ``RotationStepFailed`` alarm watches. Names,
units, dimensions and the namespace are the catalog's (:mod:`app.telemetry`);
aws-lambda-powertools writes the line.

Dimensions are closed sets: ``Environment`` (the function's ``ENVIRONMENT``, long
form) and ``Secret`` (the model's key: ``database``, ``jwt``). The step and the
version id (the event's ``ClientRequestToken``: a version id, which DescribeSecret
shows to anyone who may describe the secret, not a secret) are properties of the
line, for Logs Insights, never dimensions: a dimension per version would be one
metric series per rotation. Nothing else of the event or of the failure is written:
no value, password, URL or message. A failed step is raised to Secrets Manager as
before, after its line is printed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics

from app.rotation.protocol import STEPS, Rotator, function_environment
from app.secrets.clients import secretsmanager_client
from app.telemetry import CW_ROTATION_FAILURES, CW_ROTATION_SECONDS, EMF_NAMESPACE, CloudWatchMetric

__all__ = ["handle"]

log = logging.getLogger("app.rotation")


def handle(rotator: type[Rotator], event: Mapping[str, Any]) -> None:
    """Run the step ``event`` asks for with a new ``rotator``, print its EMF line, raise what the step raised."""
    environment = function_environment()
    started = time.perf_counter()
    failed = True
    try:
        rotator(secretsmanager_client(), environment).run(dict(event))
        failed = False
    finally:
        emit(environment.name, rotator.secret_key, event, time.perf_counter() - started, failed=failed)


def emit(environment: str, secret: str, event: Mapping[str, Any], seconds: float, *, failed: bool) -> None:
    """Print the EMF line of one step. Never raises: a metric must neither fail a step nor hide its failure."""
    values: dict[CloudWatchMetric, float] = {CW_ROTATION_SECONDS: seconds}
    if failed:
        values[CW_ROTATION_FAILURES] = 1
    dimensions = {"Environment": environment, "Secret": secret}
    step = event.get("Step")
    token = event.get("ClientRequestToken")
    properties = {"Step": step if step in STEPS else "unknown"}
    if _is_uuid(token):  # a version id as Secrets Manager makes them; anything else stays out of the line
        properties["VersionId"] = str(token)
    # One line per set of dimensions (today the two metrics share theirs: one line).
    lines: dict[tuple[str, ...], list[CloudWatchMetric]] = {}
    for metric in values:
        lines.setdefault(metric.dimensions, []).append(metric)
    try:
        for names, metrics in lines.items():
            line = EphemeralMetrics(namespace=EMF_NAMESPACE)
            # POWERTOOLS_SERVICE_NAME, when set, would add a "service" dimension the catalog does not have.
            line.service = ""
            for name in names:
                line.add_dimension(name=name, value=dimensions[name])
            for metric in metrics:
                line.add_metric(name=metric.name, unit=metric.unit, value=values[metric])
            for key, value in properties.items():
                line.add_metadata(key=key, value=value)
            line.flush_metrics()
    except Exception as exc:  # noqa: BLE001 - the step's outcome matters more than its metric
        log.warning("%s: the rotation metrics were not written (%s)", secret, type(exc).__name__)


def _is_uuid(token: object) -> bool:
    try:
        return isinstance(token, str) and str(uuid.UUID(token)) == token.lower()
    except ValueError:
        return False
