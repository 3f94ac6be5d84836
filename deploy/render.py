#!/usr/bin/env python3
"""Render a deploy/ template for an environment, with every name from the environment model.

Usage:
  deploy/render.py ENV TEMPLATE [--set NAME=VALUE ...]   a file: ECS, IAM, CloudFormation
  deploy/render.py ENV deploy/k8s                         the Kubernetes overlay of ENV (kustomize)
  deploy/render.py ENV --get NAME                         one value (docs/deployment.md: P NAME)
  deploy/render.py ENV --list                             every parameter, NAME=value

ENV is staging or production. Templates use ${NAME}. Two sources fill them:

* the model of the environment (api/app/secrets/environment.py): secret names, role
  names, function names, the rotation period, the cluster, families, log groups...;
  and ARNs built from them (EXECUTION_ROLE_ARN, DATABASE_ROTATION_FUNCTION_ARN...);
* the telemetry catalog (api/app/telemetry.py): the metrics port, the CloudWatch
  namespace, and the alarms of deploy/cloudformation/alarms.yaml, generated from its
  ALARMS (TELEMETRY_ALARMS: one alarm per secret variable or secret, as the
  dimensions of the alarm's metric require; the stale threshold is
  STALE_AFTER_TTLS x the model's SECRETS_CACHE_TTL default);
* deploy/environments/ENV.env: what only you know (account id, region, subnets,
  security groups, KMS key, Redis endpoint, sizes), plus SECRETS_PREFIX when you use
  another prefix than the model's default. A name the model owns may not be set there.

A name without a value is an error, so nothing half-rendered is deployed.
Standard library only (and kubectl for deploy/k8s): it runs wherever the AWS CLI does.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL_FILE = ROOT / "api" / "app" / "secrets" / "environment.py"
TELEMETRY_FILE = ROOT / "api" / "app" / "telemetry.py"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# What the parameter file may say: account-specific facts, never a name the model derives.
INPUTS = {"SECRETS_PREFIX"}
# The alarms' period (telemetry.Alarm counts evaluation periods of 300 s), and how often the
# API writes its EMF line (ECOMIND_EMF_INTERVAL in the task definition): several lines per
# period, so one late line never leaves a period without data.
ALARM_PERIOD_SECONDS = 300
EMF_INTERVAL_SECONDS = 60


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"render: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def environment_model() -> ModuleType:
    """api/app/secrets/environment.py, loaded by path: no dependency of the app is needed."""
    return _load(MODEL_FILE, "ecomind_environment_model")


def telemetry() -> ModuleType:
    """api/app/telemetry.py, loaded by path like the model (standard library only)."""
    return _load(TELEMETRY_FILE, "ecomind_telemetry")


def stale_after_seconds(env_model: ModuleType, catalog: ModuleType) -> int:
    """The stale threshold the API applies by default: STALE_AFTER_TTLS x SECRETS_CACHE_TTL's default."""
    return int(catalog.STALE_AFTER_TTLS * env_model.DEFAULT_CACHE_TTL)


def telemetry_parameters(env_model: ModuleType) -> dict[str, str]:
    catalog = telemetry()
    if ALARM_PERIOD_SECONDS % EMF_INTERVAL_SECONDS:
        raise SystemExit("render: the EMF interval must divide the alarm period")
    return {
        "METRICS_PORT": str(catalog.METRICS_PORT),
        "EMF_NAMESPACE": catalog.EMF_NAMESPACE,
        "EMF_INTERVAL": str(EMF_INTERVAL_SECONDS),
        "ALARM_PERIOD": str(ALARM_PERIOD_SECONDS),
        "STALE_AFTER_SECONDS": str(stale_after_seconds(env_model, catalog)),
    }


def _kebab(stem: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", stem).lower()


def _logical_id(stem: str, *values: str) -> str:
    """SecretStale + DATABASE_URL -> SecretStaleDatabaseUrl (CloudFormation ids are alphanumeric)."""
    return stem + "".join(word.capitalize() for value in values for word in re.split(r"[^A-Za-z0-9]+", value) if word)


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def alarm_resources(values: dict[str, str]) -> dict[str, dict[str, object]]:
    """The CloudWatch alarms of telemetry.ALARMS, one per value of the dimension each metric is split by."""
    env_model, catalog = environment_model(), telemetry()
    # What each EMF dimension takes (app/telemetry.py): the environment's long name, a secret
    # variable of the model, a secret of the model by its key.
    dimension_values = {
        "Environment": [values["ENVIRONMENT"]],
        "Variable": list(env_model.SECRET_VARIABLES),
        "Secret": [spec.key for spec in env_model.SECRETS],
    }
    stale = values["STALE_AFTER_SECONDS"]
    resources: dict[str, dict[str, object]] = {}
    for alarm in catalog.ALARMS:
        unknown = [d for d in alarm.metric.dimensions if d not in dimension_values]
        if unknown:
            raise SystemExit(f"render: alarm {alarm.key}: no values known for dimension {', '.join(unknown)}")
        split = [d for d in alarm.metric.dimensions if d != "Environment"]
        combos: list[dict[str, str]] = [{}]
        for dimension in split:
            combos = [{**c, dimension: v} for c in combos for v in dimension_values[dimension]]
        for combo in combos:
            suffix = "-".join(combo.values())
            dimensions = [{"Name": d, "Value": combo.get(d, values["ENVIRONMENT"])} for d in alarm.metric.dimensions]
            resources[_logical_id(alarm.key, *combo.values())] = {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "-".join(p for p in (values["ALARM_PREFIX"], _kebab(alarm.key), suffix) if p),
                    "AlarmDescription": f"{alarm.help} What to do: docs/operations.md, Alarms, {alarm.key}.",
                    "Namespace": catalog.EMF_NAMESPACE,
                    "MetricName": alarm.metric.name,
                    "Dimensions": dimensions,
                    "Statistic": alarm.statistic,
                    "Period": ALARM_PERIOD_SECONDS,
                    "EvaluationPeriods": alarm.periods,
                    "DatapointsToAlarm": alarm.periods,
                    # The stale threshold is a limit to exceed; a count of failures alarms from the first.
                    "Threshold": _number(stale if alarm.threshold == "STALE" else alarm.threshold),
                    "ComparisonOperator": (
                        "GreaterThanThreshold" if alarm.threshold == "STALE" else "GreaterThanOrEqualToThreshold"
                    ),
                    # No data is not trouble for any of them: the API writes a line every
                    # ECOMIND_EMF_INTERVAL seconds while a task runs (no task running is the ECS
                    # service's alarm, not a secret's), and a rotation function writes only
                    # when a rotation runs, every few weeks.
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": [{"Ref": "AlertsTopic"}],
                    "OKActions": [{"Ref": "AlertsTopic"}],
                },
            }
    return resources


def _yaml(value: object, indent: int = 0) -> list[str]:
    """Block YAML of dicts and lists; every scalar as JSON (a valid YAML flow scalar)."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        lines = []
        for key, item in value.items():
            nested = isinstance(item, (dict, list)) and item
            lines += [f"{pad}{key}:", *_yaml(item, indent + 2)] if nested else [f"{pad}{key}: {json.dumps(item)}"]
        return lines
    if isinstance(value, list) and value:
        lines = []
        for item in value:
            first, *rest = _yaml(item, indent + 2)
            lines += [f"{pad}- {first.lstrip()}", *rest]
        return lines
    return [f"{pad}{json.dumps(value)}"]


def blocks(values: dict[str, str]) -> dict[str, str]:
    """Generated YAML blocks a template places on a line of their own (not parameters: they span lines)."""
    return {"TELEMETRY_ALARMS": "\n".join(_yaml(alarm_resources(values), 2)).lstrip()}


def _read(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise SystemExit(f"render: {path.name}:{number}: expected NAME=VALUE")
        values[name.strip()] = value.strip()
    return values


def parameters(environment: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    envs = HERE / "environments"
    path = envs / f"{environment}.env"
    if not path.is_file():
        choices = ", ".join(sorted(p.stem for p in envs.glob("*.env")))
        raise SystemExit(f"render: no parameters for '{environment}' (choose from: {choices})")
    given = {**_read(path), **(overrides or {})}
    env_model = environment_model()
    derived = env_model.model(environment).parameters()
    owned = sorted(set(given) & set(derived) - INPUTS)
    if owned:
        raise SystemExit(
            f"render: {path.name} sets {', '.join(owned)}, which the environment model derives "
            f"({MODEL_FILE.relative_to(ROOT)}); remove them from {path.name}"
        )
    observed = telemetry_parameters(env_model)
    if set(given) & set(observed):
        raise SystemExit(
            f"render: {path.name} sets {', '.join(sorted(set(given) & set(observed)))}, which come from "
            f"{TELEMETRY_FILE.relative_to(ROOT)} and deploy/render.py; remove them from {path.name}"
        )
    try:
        m = env_model.model(environment, given.get("SECRETS_PREFIX"))
    except ValueError as exc:
        raise SystemExit(f"render: {path.name}: {exc}") from None
    values = {**given, **m.parameters(), **observed}
    cidrs = _check_cidrs(path.name, values.get("LOAD_BALANCER_CIDRS"))
    # The NetworkPolicy admits port 8000 from these only: JSON is YAML's flow style.
    values["LOAD_BALANCER_PEERS_JSON"] = json.dumps([{"ipBlock": {"cidr": c}} for c in cidrs])
    # A JSON string is a valid YAML double-quoted scalar: the password alphabet holds " and \.
    values["DATABASE_PASSWORD_EXCLUDE_JSON"] = json.dumps(values["DATABASE_PASSWORD_EXCLUDE"])
    account, region = values.get("AWS_ACCOUNT_ID", ""), values.get("AWS_REGION", "")
    if account and region:
        replicas = [r for r in values.get("REPLICA_REGIONS", "").replace(",", " ").split() if r]
        values.update(m.account_parameters(region, account, values.get("IMAGE_TAG"), replicas))
        # The rotation-failure rule matches the secrets of this environment by ARN prefix:
        # Secrets Manager appends -XXXXXX to a secret's name in its ARN.
        values["ROTATION_SECRET_ARN_PREFIXES"] = json.dumps(
            [{"prefix": m.secret_arn_pattern(region, account, spec.key).removesuffix("??????")} for spec in m.secrets]
        )
    return values


# The widest LOAD_BALANCER_CIDRS accepted, by IP version: a load balancer's subnets are
# narrower; anything wider is close to "*".
_WIDEST_PREFIX = {4: 8, 6: 32}


def _check_cidrs(source: str, value: str | None) -> list[str]:
    """LOAD_BALANCER_CIDRS becomes FORWARDED_ALLOW_IPS and the NetworkPolicy's sources of port
    8000: addresses only, never '*' or a network close to everything (any client could then
    choose the address the login limits count). Returns the CIDRs."""
    if value is None:
        return []  # a template that needs it says so: "no value for LOAD_BALANCER_CIDRS"
    cidrs = []
    for item in (part.strip() for part in value.split(",")):
        try:
            network = ipaddress.ip_network(item)
        except ValueError:
            raise SystemExit(
                f"render: {source}: LOAD_BALANCER_CIDRS holds {item!r}, not a CIDR; give the subnets the load "
                "balancer connects from (e.g. 10.0.0.0/24,10.0.1.0/24), comma-separated"
            ) from None
        if network.prefixlen < _WIDEST_PREFIX[network.version]:
            raise SystemExit(
                f"render: {source}: LOAD_BALANCER_CIDRS holds {item}, wider than /{_WIDEST_PREFIX[network.version]}: "
                "every address in it may set X-Forwarded-For; give the load balancer's subnets"
            )
        cidrs.append(str(network))
    return cidrs


def render(text: str, values: dict[str, str]) -> str:
    missing = sorted({m for m in PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise SystemExit(f"render: no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def render_kustomize(environment: str, tree: Path, values: dict[str, str]) -> str:
    """Copy the kustomize tree, fill every YAML file, build the overlay of ``environment``."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("render: kubectl (with kustomize v5) is needed to build the Kubernetes manifests")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "k8s"
        shutil.copytree(tree, copy)
        for path in copy.rglob("*.yaml"):
            path.write_text(render(path.read_text(), values))
        overlay = copy / "overlays" / environment
        if not overlay.is_dir():
            raise SystemExit(f"render: no overlay {tree.name}/overlays/{environment}")
        result = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"render: kustomize failed: {result.stderr.strip()}")
        return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("environment", help="staging or production")
    parser.add_argument("template", type=Path, nargs="?", help="a file, or the deploy/k8s folder")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override one value")
    parser.add_argument("--get", metavar="NAME", help="print the value of one parameter")
    parser.add_argument("--list", action="store_true", help="print every parameter")
    args = parser.parse_args(argv)
    overrides = dict(item.partition("=")[::2] for item in args.set)
    values = parameters(args.environment, overrides)
    if args.get:
        if args.get not in values:
            raise SystemExit(f"render: no parameter {args.get} (see: deploy/render.py {args.environment} --list)")
        sys.stdout.write(values[args.get] + "\n")
        return 0
    if args.list:
        sys.stdout.write("".join(f"{name}={values[name]}\n" for name in sorted(values)))
        return 0
    if args.template is None:
        parser.error("give a TEMPLATE, or --get NAME / --list")
    if not args.template.exists():
        raise SystemExit(f"render: no template {args.template}")
    if args.template.is_dir():
        sys.stdout.write(render_kustomize(args.environment, args.template, values))
    else:
        sys.stdout.write(render(args.template.read_text(), {**values, **blocks(values)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
