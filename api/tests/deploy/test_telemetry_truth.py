"""One truth for telemetry: what the deployment monitors comes from app.telemetry, and follows it.

1. The renders of every environment say what the catalog (and, for the stale threshold and
   the dimension values, the environment model) says: one CloudWatch alarm per alarm of
   telemetry.ALARMS and value of the dimension its metric is split by, and no other; the
   namespace, metric names, statistics, periods and thresholds; the rotation-failure rule on
   this environment's secrets only; the alerts topic on the secrets stack's key; the metrics
   port in the ECS task definition and the Kubernetes manifests, and nowhere it would be routed.
2. A fact of the catalog (or the SECRETS_CACHE_TTL default of the model) changed in a copy
   of the repository: the renders and the Grafana dashboard follow, nothing else edited.
3. No template restates a fact of the catalog by hand.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

import app.secrets.environment as environment_model
import app.telemetry as catalog

from .rendering import REPO, CfnLoader, copy_repo, load_module, render

ALARM_PERIOD = 300  # telemetry.Alarm: evaluation periods of 300 s


def parameters(env: str, root: Path = REPO) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, str(root / "deploy/render.py"), env, "--list"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def cfn(env: str, template: str, root: Path = REPO) -> dict[str, Any]:
    return yaml.load(render(env, template, root), Loader=CfnLoader)  # type: ignore[no-any-return]


def stale_seconds(c: ModuleType, model_module: ModuleType) -> int:
    return int(c.STALE_AFTER_TTLS) * int(model_module.variable("SECRETS_CACHE_TTL").default)


def follows(env: str, c: ModuleType, model_module: ModuleType, root: Path = REPO) -> None:
    """Every render of ``env`` says what the catalog ``c`` and the model ``model_module`` say."""
    m = model_module.model(env)
    p = parameters(env, root)
    assert p["METRICS_PORT"] == str(c.METRICS_PORT) and p["EMF_NAMESPACE"] == c.EMF_NAMESPACE

    # -- the alarms ------------------------------------------------------------------------
    alarms_template = cfn(env, "deploy/cloudformation/alarms.yaml", root)
    resources = alarms_template["Resources"]
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    values = {
        "Environment": [m.name],
        "Variable": list(model_module.SECRET_VARIABLES),
        "Secret": [spec.key for spec in model_module.SECRETS],
    }
    seen = set()
    for alarm in c.ALARMS:
        split = [d for d in alarm.metric.dimensions if d != "Environment"]
        assert "Environment" in alarm.metric.dimensions
        for combo in itertools.product(*(values[d] for d in split)):
            dimensions = {"Environment": m.name, **dict(zip(split, combo, strict=True))}
            found = [
                name
                for name, a in alarms.items()
                if a["MetricName"] == alarm.metric.name
                and {d["Name"]: d["Value"] for d in a["Dimensions"]} == dimensions
            ]
            assert len(found) == 1, f"{alarm.key} {dimensions}: {found}"
            a = alarms[found[0]]
            assert a["Namespace"] == c.EMF_NAMESPACE and a["Statistic"] == alarm.statistic
            assert a["Period"] == ALARM_PERIOD and a["EvaluationPeriods"] == alarm.periods == a["DatapointsToAlarm"]
            threshold = stale_seconds(c, model_module) if alarm.threshold == "STALE" else float(alarm.threshold)
            assert a["Threshold"] == threshold
            assert a["TreatMissingData"] == "notBreaching"
            assert a["AlarmActions"] == a["OKActions"] == [{"Ref": "AlertsTopic"}]
            assert found[0].startswith(p["ALARM_PREFIX"] + "-") and alarm.key in json.dumps(a["AlarmDescription"])
            seen.add(found[0])
    assert set(alarms) == seen, "an alarm the catalog does not have"

    topic = resources["AlertsTopic"]["Properties"]
    assert topic["TopicName"] == p["ALERTS_TOPIC"] and topic["KmsMasterKeyId"] == p["KMS_ALIAS"]
    statements = {s["Sid"]: s for s in resources["AlertsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    cloudwatch = statements["CloudWatchAlarmsOfThisEnvironment"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"]["Sub"].endswith(f":alarm:{p['ALARM_PREFIX']}-*")
    assert cloudwatch["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    events = statements["RotationFailuresRule"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert events["Condition"]["ArnEquals"]["aws:SourceArn"] == {"GetAtt": "RotationFailuresRule.Arn"}

    rule = resources["RotationFailuresRule"]["Properties"]
    assert rule["Name"] == p["ROTATION_FAILURES_RULE"] and rule["Targets"][0]["Arn"] == {"Ref": "AlertsTopic"}
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.secretsmanager"] and pattern["detail-type"] == [
        "AWS Service Event via CloudTrail"
    ]
    assert {"RotationFailed", "RotationAbandoned"} <= set(pattern["detail"]["eventName"])
    region, account = p["AWS_REGION"], p["AWS_ACCOUNT_ID"]
    assert pattern["detail"]["additionalEventData"]["SecretId"] == [
        {"prefix": f"arn:aws:secretsmanager:{region}:{account}:secret:{m.secret_name(spec.key)}-"} for spec in m.secrets
    ]

    key = cfn(env, "deploy/cloudformation/secrets.yaml", root)["Resources"]["SecretsKey"]["Properties"]["KeyPolicy"]
    alerts = next(s for s in key["Statement"] if s["Sid"] == "AlarmsAndRotationFailuresPublishToTheAlertsTopic")
    assert set(alerts["Principal"]["Service"]) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    context = alerts["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]["Sub"]
    assert context.endswith(f":{p['ALERTS_TOPIC']}")

    # -- the metrics port --------------------------------------------------------------------
    container = json.loads(render(env, "deploy/ecs/api.taskdef.json", root))["containerDefinitions"][0]
    ports = {pm.get("name"): pm["containerPort"] for pm in container["portMappings"]}
    assert ports["metrics"] == c.METRICS_PORT and len(ports) == 2
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["ECOMIND_METRICS_HOST"] == "0.0.0.0"
    interval = int(environment["ECOMIND_EMF_INTERVAL"])
    assert 0 < interval and ALARM_PERIOD % interval == 0 and ALARM_PERIOD // interval >= 2  # alarms have data

    docs = {d["kind"]: d for d in yaml.safe_load_all(render(env, "deploy/k8s", root))}
    pod = docs["Deployment"]["spec"]["template"]
    api = pod["spec"]["containers"][0]
    assert {port["name"]: port["containerPort"] for port in api["ports"]}["metrics"] == c.METRICS_PORT
    assert {e["name"]: e["value"] for e in api["env"]}["ECOMIND_METRICS_HOST"] == "0.0.0.0"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(c.METRICS_PORT)
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    # The Service (what an Ingress or a load balancer routes to) does not carry the metrics port.
    for port in docs["Service"]["spec"]["ports"]:
        assert port["targetPort"] not in ("metrics", c.METRICS_PORT) and port["port"] != c.METRICS_PORT
    rules = docs["NetworkPolicy"]["spec"]["ingress"]
    metrics_rules = [r for r in rules if any(port["port"] in ("metrics", c.METRICS_PORT) for port in r["ports"])]
    assert metrics_rules and all(r.get("from") for r in metrics_rules), "the metrics port must not be open to all"


@pytest.mark.parametrize("env", environment_model.DEPLOYED)
def test_renders_follow_the_catalog(env: str) -> None:
    follows(env, catalog, environment_model)


def test_render_refuses_a_parameter_file_that_restates_the_catalog(tmp_path: Path) -> None:
    copy = copy_repo(tmp_path, ("api/app", "deploy"))
    params = copy / "deploy/environments/staging.env"
    params.write_text(params.read_text() + "METRICS_PORT=9100\n")
    result = subprocess.run(
        [sys.executable, str(copy / "deploy/render.py"), "staging", "--list"], capture_output=True, text=True
    )
    assert result.returncode != 0 and "METRICS_PORT" in result.stderr and "api/app/telemetry.py" in result.stderr


# -- 2. change one fact, the renders and the dashboard follow -----------------------------

TELEMETRY = "api/app/telemetry.py"
MODEL = "api/app/secrets/environment.py"
FACTS: dict[str, tuple[str, str, str]] = {
    # fact: (file, text in it, its replacement)
    "the metrics port": (TELEMETRY, "METRICS_PORT = 9464", "METRICS_PORT = 9470"),
    "the CloudWatch namespace": (
        TELEMETRY,
        'EMF_NAMESPACE = "EcoMind/Secrets"',
        'EMF_NAMESPACE = "EcoMind/SecretLayer"',
    ),
    "a CloudWatch metric's name": (TELEMETRY, '    "SecondsSinceRefresh",\n', '    "SecondsSinceLastRefresh",\n'),
    "the stale multiple": (TELEMETRY, "STALE_AFTER_TTLS = 3", "STALE_AFTER_TTLS = 4"),
    "an alarm's periods": (TELEMETRY, '        "STALE",\n        2,\n', '        "STALE",\n        4,\n'),
    "a Prometheus metric's name": (
        TELEMETRY,
        '"ecomind_secret_since_refresh_seconds"',
        '"ecomind_secret_since_last_refresh_seconds"',
    ),
    "the cache TTL default": (
        MODEL,
        'Variable("SECRETS_CACHE_TTL", False, "300")',
        'Variable("SECRETS_CACHE_TTL", False, "600")',
    ),
}


def dashboard_metrics(root: Path) -> set[str]:
    text = subprocess.run(
        [sys.executable, str(root / "deploy/grafana/dashboard.py"), "--stdout"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    exprs = [t["expr"] for p in json.loads(text)["panels"] for t in p.get("targets", [])]
    return set(re.findall(r"\becomind_[a-z0-9_]+", " ".join(exprs)))


@pytest.mark.slow
@pytest.mark.parametrize("fact", list(FACTS))
def test_changing_one_fact_moves_the_renders_and_the_dashboard(fact: str, tmp_path: Path) -> None:
    copy = copy_repo(tmp_path, ("api/app", "deploy"))
    file, old, new = FACTS[fact]
    text = (copy / file).read_text()
    assert text.count(old) == 1, f"the fact to change is not in {file}: {old!r}"
    (copy / file).write_text(text.replace(old, new))
    changed_catalog, changed_model = load_module(copy / TELEMETRY), load_module(copy / MODEL)

    before = {env: render(env, "deploy/cloudformation/alarms.yaml") for env in environment_model.DEPLOYED}
    before_k8s = render("staging", "deploy/k8s")
    after = {env: render(env, "deploy/cloudformation/alarms.yaml", copy) for env in environment_model.DEPLOYED}
    moved = before != after or before_k8s != render("staging", "deploy/k8s", copy)
    assert moved or dashboard_metrics(copy) != dashboard_metrics(REPO), (
        "the edit changed nothing: the test would prove nothing"
    )
    for env in environment_model.DEPLOYED:
        follows(env, changed_catalog, changed_model, copy)
    assert dashboard_metrics(copy) == {metric.name for metric in changed_catalog.METRICS}


# -- 3. no template restates the catalog ----------------------------------------------------


def catalog_facts() -> set[str]:
    facts = {str(catalog.METRICS_PORT), catalog.EMF_NAMESPACE}
    facts |= {metric.name for metric in catalog.METRICS} | {metric.name for metric in catalog.CLOUDWATCH}
    return facts


def test_no_template_or_generator_restates_a_fact_of_the_catalog() -> None:
    files = [
        path
        for folder in ("deploy/ecs", "deploy/k8s", "deploy/cloudformation", "deploy/iam", "deploy/environments")
        for path in (REPO / folder).rglob("*")
        if path.is_file()
    ] + [REPO / "deploy/render.py", REPO / "deploy/grafana/dashboard.py"]
    assert len(files) > 10
    for path in files:
        text = path.read_text()
        restated = {fact for fact in catalog_facts() if re.search(rf"(?<![\w/]){re.escape(fact)}(?![\w/])", text)}
        assert not restated, f"{path.relative_to(REPO)} restates {sorted(restated)}: read it from app/telemetry.py"
