"""What one process's secret layer did, counted: the numbers behind /metrics and the EMF lines.

A :class:`Stats` holds counters by metric (a :class:`~app.telemetry.Metric` of the
catalog) and label values. Counting is a lock and a dictionary update: the request
path pays nothing more. Nothing here formats or exports; app/observe/metrics.py turns the
counts into Prometheus metrics when ``/metrics`` is scraped, and into EMF lines.

Label values come from closed sets (:data:`app.telemetry.LABEL_VALUES`) or names
(variables, regions, operations), never from a value: :meth:`Stats.inc` refuses a
label it was not told about, so a secret cannot slip in as a label by mistake.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from app.secrets.errors import ResolutionError, SecretFormatError, SecretsThrottled
from app.telemetry import LABEL_VALUES, Metric

__all__ = ["Stats", "cause_of"]


def cause_of(exc: ResolutionError) -> str:
    """The ``cause`` label of a failed fetch (:data:`app.telemetry.CAUSES`)."""
    if isinstance(exc, SecretsThrottled):
        return "throttled"
    if isinstance(exc, SecretFormatError):
        return "format"
    return {"unreachable": "unreachable", "denied": "denied", "not_found": "not_found", "config": "config"}.get(
        exc.kind, "other"
    )


class Stats:
    """Counters of one process; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Metric, dict[tuple[str, ...], int]] = {}

    def inc(self, metric: Metric, *labels: str, by: int = 1) -> None:
        """Add ``by`` to ``metric`` at ``labels`` (one value per label of the metric, in order)."""
        if len(labels) != len(metric.labels):
            raise ValueError(f"{metric.name} takes labels {metric.labels}, got {len(labels)} value(s)")
        for name, value in zip(metric.labels, labels, strict=True):
            allowed = LABEL_VALUES.get(name)
            if allowed is not None and value not in allowed:
                raise ValueError(f"{metric.name}: {name} must be one of {', '.join(allowed)}")
        with self._lock:
            series = self._counts.setdefault(metric, {})
            series[labels] = series.get(labels, 0) + by

    def counts(self, metric: Metric) -> Mapping[tuple[str, ...], int]:
        """A copy of ``metric``'s counts by label values (empty when never counted)."""
        with self._lock:
            return dict(self._counts.get(metric, {}))

    def total(self, metric: Metric) -> int:
        with self._lock:
            return sum(self._counts.get(metric, {}).values())
