"""The catalog of every signal EcoMind emits: metric names, labels, units, and the alarms over them.

One place for each name. The API's Prometheus endpoint (app/observe/metrics.py), the
Embedded Metric Format lines of the API and of the rotation functions, the
CloudFormation alarms and the Grafana dashboard (``deploy/render.py``), the metric
table of docs/operations.md and the tests all read this module; a name written
anywhere else is a bug that ``tests/deploy/test_telemetry_truth.py`` reports.

Standard library only, and no import of the rest of the package: ``deploy/render.py``
loads this file by path, like the model of the environment.

No label ever holds a value that could be a secret, an email or a token: labels take
the names of variables, operations, regions, stages and closed sets of causes, and
:data:`LABEL_VALUES` lists the closed sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ALARMS",
    "CAUSES",
    "CLOUDWATCH",
    "CW_REFRESH_FAILURES",
    "CW_ROTATION_FAILURES",
    "CW_ROTATION_SECONDS",
    "CW_SINCE_REFRESH",
    "DB_POOL_EXHAUSTED",
    "DB_RECOVERIES",
    "DB_REFUSALS",
    "DB_UNAVAILABLE",
    "EMF_NAMESPACE",
    "HTTP_RESPONSES",
    "JWT_PREVIOUS_KEY",
    "LABEL_VALUES",
    "LOGIN_FAILURES",
    "LOGIN_LOCKOUTS",
    "LOGIN_THROTTLED",
    "METRICS",
    "METRICS_PORT",
    "REFRESH_ATTEMPTS",
    "REFRESH_FAILURES",
    "SERVED_REGION",
    "SINCE_REFRESH",
    "SM_CALLS",
    "STALE",
    "STALE_AFTER_TTLS",
    "STALE_THRESHOLD",
    "VALUE_AGE",
    "Alarm",
    "CloudWatchMetric",
    "Metric",
]

Kind = Literal["counter", "gauge"]


@dataclass(frozen=True)
class Metric:
    """One Prometheus metric of the API (``/metrics`` on the metrics port)."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str
    unit: str = ""  # Grafana unit id: "s" for seconds, "" for a plain count


# Why a fetch failed, by the secret layer's error kinds (app/secrets/errors.py).
CAUSES: tuple[str, ...] = ("unreachable", "throttled", "denied", "not_found", "format", "config", "other")

# The closed sets of label values. "variable" takes the secret variables of the model
# of the environment, "region" AWS region names, "operation" Secrets Manager API names.
LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "cause": CAUSES,
    "result": ("ok", "throttled", "denied", "not_found", "unreachable", "error"),
    "stage": ("AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"),
    "reason": ("address_limited", "account_locked", "account_busy", "address_busy"),
    "status_class": ("1xx", "2xx", "3xx", "4xx", "5xx"),
}

VALUE_AGE = Metric(
    "ecomind_secret_value_age_seconds",
    "gauge",
    ("variable",),
    "Age of the value served: seconds since its version was created (Secrets Manager's CreatedDate, "
    "a file's modification time). Grows past the rotation period when a rotation is not followed.",
    "s",
)
SINCE_REFRESH = Metric(
    "ecomind_secret_since_refresh_seconds",
    "gauge",
    ("variable",),
    "Seconds since the value was last fetched successfully. Stays under the cache TTL while refreshes work.",
    "s",
)
STALE = Metric(
    "ecomind_secret_stale",
    "gauge",
    ("variable",),
    "1 when the seconds since the last successful refresh exceed the stale threshold and the last refresh failed.",
)
STALE_THRESHOLD = Metric(
    "ecomind_secret_stale_threshold_seconds",
    "gauge",
    (),
    "The stale threshold in force (ECOMIND_SECRETS_STALE_AFTER, default 3 x SECRETS_CACHE_TTL).",
    "s",
)
REFRESH_ATTEMPTS = Metric(
    "ecomind_secret_refresh_attempts_total",
    "counter",
    ("variable",),
    "Fetches of an already loaded secret: background refreshes after the TTL, and refreshes after a "
    "rejected value (a refused database password, an unknown JWT key id).",
)
REFRESH_FAILURES = Metric(
    "ecomind_secret_refresh_failures_total",
    "counter",
    ("variable", "cause"),
    "Refreshes that failed, by cause; the last good value kept serving.",
)
SERVED_REGION = Metric(
    "ecomind_secret_served_region",
    "gauge",
    ("variable", "region"),
    "1 for the AWS region whose value is served (a replica's after a failover).",
)
SM_CALLS = Metric(
    "ecomind_secretsmanager_calls_total",
    "counter",
    ("operation", "result", "region"),
    "Secrets Manager API calls made by this process, by operation and result (throttled included).",
)
DB_REFUSALS = Metric(
    "ecomind_database_password_refusals_total",
    "counter",
    (),
    "New database connections refused with the cached password (a rotation happened).",
)
DB_RECOVERIES = Metric(
    "ecomind_database_password_recoveries_total",
    "counter",
    ("stage",),
    "Refused connections that then succeeded with the credentials fetched again, by the stage that "
    "worked: a rotation followed without a failed request.",
)
JWT_PREVIOUS_KEY = Metric(
    "ecomind_jwt_previous_key_verifications_total",
    "counter",
    (),
    "Tokens verified with the previous JWT key (AWSPREVIOUS): tokens issued before a rotation.",
)
LOGIN_FAILURES = Metric(
    "ecomind_login_failures_total",
    "counter",
    (),
    "Logins refused for a wrong email or password (401).",
)
LOGIN_THROTTLED = Metric(
    "ecomind_login_throttled_total",
    "counter",
    ("reason",),
    "Logins answered 429 by the login limits: too many failures from an address, a locked account, or an "
    "account or address whose window is full of logins still being checked.",
)
LOGIN_LOCKOUTS = Metric(
    "ecomind_login_lockouts_total",
    "counter",
    (),
    "Account lockouts started (an account reached ECOMIND_LOGIN_FAILURES_PER_ACCOUNT).",
)
HTTP_RESPONSES = Metric(
    "ecomind_http_responses_total",
    "counter",
    ("status_class",),
    "Responses of the API's port by status class; 5xx includes the 500s of errors no handler answered.",
)
DB_UNAVAILABLE = Metric(
    "ecomind_database_unavailable_total",
    "counter",
    (),
    "Requests answered 503 because PostgreSQL could not be reached, refused every password or did not answer in time.",
)
DB_POOL_EXHAUSTED = Metric(
    "ecomind_database_pool_exhausted_total",
    "counter",
    (),
    "Requests answered 503 as overloaded: every pooled database connection stayed busy for "
    "ECOMIND_DB_POOL_TIMEOUT. PostgreSQL is not down.",
)

METRICS: tuple[Metric, ...] = (
    VALUE_AGE,
    SINCE_REFRESH,
    STALE,
    STALE_THRESHOLD,
    REFRESH_ATTEMPTS,
    REFRESH_FAILURES,
    SERVED_REGION,
    SM_CALLS,
    DB_REFUSALS,
    DB_RECOVERIES,
    JWT_PREVIOUS_KEY,
    LOGIN_FAILURES,
    LOGIN_THROTTLED,
    LOGIN_LOCKOUTS,
    HTTP_RESPONSES,
    DB_UNAVAILABLE,
    DB_POOL_EXHAUSTED,
)

# A secret is stale when its last successful refresh is older than this many TTLs:
# one missed refresh (a blip, a throttled call) is not stale, three in a row are.
STALE_AFTER_TTLS = 3

# The metrics listener of the API: its own port, never routed by the load balancer or
# the Ingress (the public port has no /metrics).
METRICS_PORT = 9464

# -- CloudWatch: Embedded Metric Format lines (the API's and the rotation functions') ----

EMF_NAMESPACE = "EcoMind/Secrets"


@dataclass(frozen=True)
class CloudWatchMetric:
    name: str
    unit: str  # a CloudWatch unit
    dimensions: tuple[str, ...]
    help: str


CW_SINCE_REFRESH = CloudWatchMetric(
    "SecondsSinceRefresh",
    "Seconds",
    ("Environment", "Variable"),
    "The API, every ECOMIND_EMF_INTERVAL seconds: ecomind_secret_since_refresh_seconds, the worst task.",
)
CW_REFRESH_FAILURES = CloudWatchMetric(
    "RefreshFailures",
    "Count",
    ("Environment", "Variable"),
    "The API, every ECOMIND_EMF_INTERVAL seconds: refreshes that failed since the last line.",
)
CW_ROTATION_FAILURES = CloudWatchMetric(
    "RotationStepFailures",
    "Count",
    ("Environment", "Secret"),
    "A rotation function: 1 when a step (createSecret, setSecret, testSecret, finishSecret) failed.",
)
CW_ROTATION_SECONDS = CloudWatchMetric(
    "RotationStepSeconds",
    "Seconds",
    ("Environment", "Secret"),
    "A rotation function: how long each step took.",
)

CLOUDWATCH: tuple[CloudWatchMetric, ...] = (
    CW_SINCE_REFRESH,
    CW_REFRESH_FAILURES,
    CW_ROTATION_FAILURES,
    CW_ROTATION_SECONDS,
)


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch alarm of deploy/cloudformation/alarms.yaml (rendered per environment)."""

    key: str  # the resource's logical id stem
    metric: CloudWatchMetric
    statistic: Literal["Maximum", "Sum"]
    threshold: str  # a number, or "STALE" for the stale threshold of the environment
    periods: int  # evaluation periods of 300 s
    help: str


ALARMS: tuple[Alarm, ...] = (
    Alarm(
        "SecretStale",
        CW_SINCE_REFRESH,
        "Maximum",
        "STALE",
        2,
        "A task has served a secret without refreshing it for longer than the stale threshold.",
    ),
    Alarm(
        "RefreshFailing",
        CW_REFRESH_FAILURES,
        "Sum",
        "1",
        3,
        "Refreshes of a secret have failed for 15 minutes in a row (tasks keep serving the last good value).",
    ),
    Alarm(
        "RotationStepFailed",
        CW_ROTATION_FAILURES,
        "Sum",
        "1",
        1,
        "A rotation function failed a step: the rotation is unfinished (AWSPENDING left behind).",
    ),
)
