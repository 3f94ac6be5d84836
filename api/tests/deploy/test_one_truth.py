"""One truth: what an environment is lives in app.secrets.environment, and everything follows it.

1. Every artifact agrees with the model: task definitions, IAM policies, CloudFormation,
   Kubernetes, compose, .env.example, the parameter files.
2. A fact of the model changed in a copy of the repository (a secret's name, a role's
   name, a rotation period, the short name behind the prefix): the settings,
   ``secrets provision --dry-run``, ``doctor``, every rendered artifact and the command
   blocks of docs/deployment.md follow, with nothing else edited.
3. Every EcoMind name written in the docs is a name the model has.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.secrets.environment import DEPLOYED, ENVIRONMENTS, RDS_KEYS, VARIABLE_NAMES, model

from ..conftest import Aws, Database
from ..support.environment import child_env
from .rendering import REPO, CfnLoader, copy_repo, load_module, render

COMPOSE_ONLY = {"POSTGRES_PASSWORD"}  # read by docker compose, not by the app
SERVER_ONLY = {"FORWARDED_ALLOW_IPS"}  # read by uvicorn, not by the app
DOCS = ("README.md", "docs/deployment.md", "docs/secrets.md", "docs/troubleshooting.md", "docs/operations.md")


def _variables(environment: dict[str, str]) -> set[str]:
    """The settings variables set; the API's ECOMIND_* knobs are checked by test_knobs.py."""
    return {name for name in environment if not name.startswith("ECOMIND_")}


def secret_resources(policy: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if "secretsmanager:GetSecretValue" in actions:
            resources = statement["Resource"]
            found |= {resources} if isinstance(resources, str) else set(resources)
    return {f"{r.split(':')[3]}:{r.split(':secret:')[1]}" for r in found}


def kms_grants(policy: dict[str, Any]) -> dict[str, set[str]]:
    """The KMS key ARNs each kms: statement grants, and the Secrets Manager endpoints it is through."""
    grants: dict[str, set[str]] = {"keys": set(), "via": set()}
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any(action.startswith("kms:") for action in actions):
            resources, via = statement["Resource"], statement["Condition"]["StringEquals"]["kms:ViaService"]
            grants["keys"] |= {resources} if isinstance(resources, str) else set(resources)
            grants["via"] |= {via} if isinstance(via, str) else set(via)
    return grants


def artifacts(env: str, m: Any, root: Path = REPO) -> None:
    """Every rendered artifact of ``env`` names what the model ``m`` says."""
    db, jwt = m.secret_name("database"), m.secret_name("jwt")
    params = dict(
        line.split("=", 1)
        for line in subprocess.run(
            [sys.executable, str(root / "deploy/render.py"), env, "--list"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    api = json.loads(render(env, "deploy/ecs/api.taskdef.json", root))
    container = api["containerDefinitions"][0]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert _variables(environment) - SERVER_ONLY <= set(VARIABLE_NAMES)
    # Only the load balancer may set the client address that the login limits count.
    assert environment["FORWARDED_ALLOW_IPS"] == params["LOAD_BALANCER_CIDRS"]
    assert environment["DATABASE_URL"] == f"aws-secretsmanager:{db}"
    assert environment["JWT_SECRET"] == f"aws-secretsmanager:{jwt}"
    assert environment["ENVIRONMENT"] == env and environment["SECRETS_PREFIX"] == m.prefix
    assert api["family"] == m.family("api") and api["taskRoleArn"].endswith(f":role/{m.role_name('api')}")
    assert api["executionRoleArn"].endswith(f":role/{m.role_name('execution')}")
    assert container["logConfiguration"]["options"]["awslogs-group"] == m.log_group("api")
    migration = json.loads(render(env, "deploy/ecs/migration.taskdef.json", root))
    migration_env = {e["name"]: e["value"] for e in migration["containerDefinitions"][0]["environment"]}
    # A reference, not an injected value: the migration reads the secret itself, with failover.
    assert migration_env["DATABASE_URL"] == f"aws-secretsmanager:{db}" and "secrets" not in migration
    assert "JWT_SECRET" not in migration_env
    assert migration["taskRoleArn"].endswith(f":role/{m.role_name('migration')}")

    iam = {p.name: json.loads(render(env, f"deploy/iam/{p.name}", root)) for p in (root / "deploy/iam").glob("*.json")}
    # Reads in every region of the secret (failover); rotation writes in the primary only.
    regions = [params["AWS_REGION"], *[r for r in params.get("REPLICA_REGIONS", "").split(",") if r]]
    everywhere = {f"{r}:{name}-??????" for r in regions for name in (db, jwt)}
    assert secret_resources(iam["api-task-role.policy.json"]) == everywhere
    assert secret_resources(iam["migration-task-role.policy.json"]) == {e for e in everywhere if db in e}
    primary = params["AWS_REGION"]
    # External Secrets reads the primary region only (deploy/k8s/cluster-secret-store.yaml: region
    # AWS_REGION, one store, no failover): a replica's ARN would be a grant nothing uses.
    assert secret_resources(iam["external-secrets.policy.json"]) == {f"{primary}:{db}-??????"}
    assert secret_resources(iam["execution-role.policy.json"]) == set()  # ECS injects no secret
    # KMS in exactly the regions each role reads its secrets in, never any region (kms:*).
    account = params["AWS_ACCOUNT_ID"]
    for policy, read_in in (
        ("api-task-role.policy.json", regions),
        ("migration-task-role.policy.json", regions),
        ("external-secrets.policy.json", [primary]),
        ("rotation-lambda-role.policy.json", [primary]),
        ("execution-role.policy.json", []),
    ):
        assert kms_grants(iam[policy]) == {
            "keys": {f"arn:aws:kms:{r}:{account}:key/*" for r in read_in},
            "via": {f"secretsmanager.{r}.amazonaws.com" for r in read_in},
        }, policy
    store = yaml.safe_load(render(env, "deploy/k8s/cluster-secret-store.yaml", root))
    assert store["spec"]["provider"]["aws"]["region"] == primary
    assert secret_resources(iam["rotation-lambda-role.policy.json"]) == {
        f"{primary}:{db}-??????",
        f"{primary}:{jwt}-??????",
    }

    cfn = yaml.load(render(env, "deploy/cloudformation/secrets.yaml", root), Loader=CfnLoader)
    resources = cfn["Resources"]
    assert resources["DatabaseSecret"]["Properties"]["Name"] == db
    assert resources["JwtSecret"]["Properties"]["Name"] == jwt
    generated = resources["DatabaseSecret"]["Properties"]["GenerateSecretString"]
    template_json = re.sub(
        r"\$\{(\w+)\}", "0", re.sub(r'"\$\{(\w+)\}"', r'"\1"', generated["SecretStringTemplate"]["Sub"])
    )
    assert set(json.loads(template_json)) | {generated["GenerateStringKey"]} == set(RDS_KEYS)
    assert generated["ExcludeCharacters"] == m.secret("database").generation.exclude_characters
    for resource, key in (("DatabaseRotation", "database"), ("JwtRotation", "jwt")):
        props = resources[resource]["Properties"]
        assert props["RotationRules"]["AutomaticallyAfterDays"] == m.rotation_days
        assert props["RotationLambdaARN"]["Sub"].endswith(f":function:{m.function_name(key)}")
    assert resources["SecretsAuditTrail"]["Properties"]["TrailName"] == m.parameters()["AUDIT_TRAIL"]

    manifests = list(yaml.safe_load_all(render(env, "deploy/k8s", root)))
    docs = {d["kind"]: d for d in manifests}
    assert docs["ExternalSecret"]["apiVersion"] == "external-secrets.io/v1"
    assert docs["ExternalSecret"]["spec"]["data"][0]["remoteRef"]["key"] == db
    assert docs["ServiceAccount"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
        f":role/{m.role_name('api')}"
    )
    assert {d["metadata"].get("namespace") for d in manifests if d["kind"] != "Namespace"} == {
        m.parameters()["NAMESPACE"]
    }
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    for container in pod["containers"] + pod["initContainers"]:
        env_vars = {e["name"]: e["value"] for e in container["env"]}
        assert _variables(env_vars) - SERVER_ONLY <= set(VARIABLE_NAMES) and env_vars["ENVIRONMENT"] == env
    api_env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert api_env["FORWARDED_ALLOW_IPS"] == params["LOAD_BALANCER_CIDRS"]
    # Port 8000 admits the load balancer's subnets only: another pod could set X-Forwarded-For.
    ingress = docs["NetworkPolicy"]["spec"]["ingress"]
    [api_port] = [rule for rule in ingress if {"port": 8000, "protocol": "TCP"} in rule["ports"]]
    assert [peer["ipBlock"]["cidr"] for peer in api_port["from"]] == params["LOAD_BALANCER_CIDRS"].split(",")
    assert api_env["SECRETS_PREFIX"] == m.prefix and "DATABASE_URL" not in api_env  # read through IRSA
    assert docs["Namespace"]["metadata"]["name"] == m.parameters()["NAMESPACE"]


# -- 1. the artifacts agree with the model ---------------------------------------------------


@pytest.mark.parametrize("env", DEPLOYED)
def test_rendered_artifacts_follow_the_model(env: str) -> None:
    artifacts(env, model(env))


def test_parameter_files_hold_no_name_the_model_derives() -> None:
    for env in DEPLOYED:
        text = (REPO / f"deploy/environments/{env}.env").read_text()
        given = {line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
        assert not given & (set(model(env).parameters()) - {"SECRETS_PREFIX"})


def test_render_refuses_a_parameter_file_that_repeats_the_model(tmp_path: Path) -> None:
    copy = _copy_repo(tmp_path)
    params = copy / "deploy/environments/staging.env"
    params.write_text(params.read_text() + "CLUSTER=my-own-cluster\n")
    result = subprocess.run(
        [sys.executable, str(copy / "deploy/render.py"), "staging", "--list"], capture_output=True, text=True
    )
    assert result.returncode != 0 and "CLUSTER" in result.stderr and "environment model derives" in result.stderr


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("*", "not a CIDR"),
        ("10.0.0.0/24,*", "not a CIDR"),
        ("the-vpc", "not a CIDR"),
        ("10.0.0.0/33", "not a CIDR"),
        ("0.0.0.0/0", "wider than /8"),
        ("10.0.0.0/24,::/0", "wider than /32"),
        ("8.0.0.0/5", "wider than /8"),
    ],
)
def test_render_refuses_load_balancer_cidrs_that_would_trust_anyone(tmp_path: Path, bad: str, why: str) -> None:
    copy = _copy_repo(tmp_path)
    params = copy / "deploy/environments/staging.env"
    text = re.sub(r"^LOAD_BALANCER_CIDRS=.*$", f"LOAD_BALANCER_CIDRS={bad}", params.read_text(), flags=re.M)
    params.write_text(text)
    result = subprocess.run(
        [sys.executable, str(copy / "deploy/render.py"), "staging", "--list"], capture_output=True, text=True
    )
    assert result.returncode != 0 and "LOAD_BALANCER_CIDRS" in result.stderr and why in result.stderr


def test_compose_and_env_example() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for name in ("migrate", "api"):
        service = compose["services"][name]
        assert service["env_file"] == [".env"]
        assert set(service["environment"]) <= set(VARIABLE_NAMES)
    assert "${POSTGRES_PASSWORD" in compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    example = (REPO / ".env.example").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in example if line and not line.startswith("#")}
    assert names <= set(VARIABLE_NAMES) | COMPOSE_ONLY
    assert {"DATABASE_URL", "JWT_SECRET"} <= names


# -- 2. change one fact, everything follows -------------------------------------------------

MODEL = "api/app/secrets/environment.py"
FACTS: dict[str, tuple[str, str]] = {
    # fact: (text in the model, its replacement)
    "a secret's name": ('        "jwt",\n        "jwt",\n', '        "jwt",\n        "signing-key",\n'),
    "the role names": ('return f"{self.resource_prefix}-{role}"', 'return f"{self.resource_prefix}-{role}-role"'),
    "a rotation period": ('{"staging": 90, "production": 30}', '{"staging": 45, "production": 30}'),
    "the prefix (the short name)": (
        '{"development": "dev", "staging": "staging", "production": "prod"}',
        '{"development": "dev", "staging": "stg", "production": "prod"}',
    ),
}


def _copy_repo(tmp_path: Path) -> Path:
    return copy_repo(tmp_path, ("api/app", "deploy", "docs"), ("README.md", ".env.example"))


def _cli(copy: Path, aws: Aws, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = child_env()
    environ.update(aws.env, PYTHONPATH=str(copy / "api"), COLUMNS="200", **env)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=copy, env=environ, capture_output=True, text=True, timeout=120
    )


def names_in(text: str) -> set[str]:
    """EcoMind names written in ``text``, without ARN suffixes, wildcards or punctuation."""
    found = set()
    # "$" and braces stay in the token: a name assembled in the shell (ecomind-$ENV-api) is
    # exactly how the original guide created ecomind-production-* beside ecomind-prod-*.
    for token in re.findall(r"ecomind[-/_][A-Za-z0-9_./*?${}-]*", text):
        token = re.sub(r"(-\?{6}|-AbCdEf|/\*|/\.\.\.|\*)$", "", token).rstrip(".,/-?")
        found.add(token)
    return found


def known_names(m_module: Any) -> set[str]:
    known: set[str] = set()
    for env in m_module.ENVIRONMENTS:
        values = m_module.model(env).parameters().values()
        known |= {v for v in values if "ecomind" in v}
    return known | set(m_module.EXAMPLE_VALUES)  # the policy's example values are facts of the model too


@pytest.mark.slow
@pytest.mark.parametrize("fact", list(FACTS))
def test_changing_one_fact_of_the_model_moves_everything(fact: str, tmp_path: Path, aws: Aws) -> None:
    copy = _copy_repo(tmp_path)
    old, new = FACTS[fact]
    model_file = copy / MODEL
    text = model_file.read_text()
    assert text.count(old) == 1, f"the fact to change is not in the model: {old!r}"
    model_file.write_text(text.replace(old, new))
    changed = load_module(model_file).model("staging")
    before = model("staging")
    assert changed.parameters() != before.parameters(), "the edit changed nothing: the test would prove nothing"

    # Settings: the default references outside development.
    check = _cli(copy, aws, "config", "check", "--json", "--environment", "staging")
    rows = {r["variable"]: r for r in json.loads(check.stdout)["variables"]}
    for variable, key in (("DATABASE_URL", "database"), ("JWT_SECRET", "jwt")):
        assert rows[variable]["source"] == f"default -> aws-secretsmanager:{changed.secret_name(key)}"

    # provision --dry-run: names, functions, period.
    plan = _cli(
        copy, aws, "secrets", "provision", "-e", "staging", "--db-host", "h", "--enable-rotation", "--dry-run", "--json"
    )
    assert plan.returncode == 0, plan.stderr
    secrets = json.loads(plan.stdout)["secrets"]
    assert [s["name"] for s in secrets] == [changed.secret_name("database"), changed.secret_name("jwt")]
    for entry, key in zip(secrets, ("database", "jwt"), strict=True):
        rotate = next(c for c in entry["changes"] if c.startswith("RotateSecret"))
        assert f"every {changed.rotation_days} days" in rotate and rotate.endswith(f":{changed.function_name(key)})")
    # provision's help: the period it names for the environment is the model's.
    shown = " ".join(_cli(copy, aws, "secrets", "provision", "--help").stdout.split())
    assert f"{changed.rotation_days} {changed.short}" in shown, shown

    # doctor: the names it looks for, the period it demands.
    values = {"database": json.dumps(dict.fromkeys(RDS_KEYS, "x") | {"port": 5432}), "jwt": "k" * 48}
    for key in ("database", "jwt"):
        aws.create(changed.secret_name(key), values[key])
        aws.client.rotate_secret(
            SecretId=changed.secret_name(key),
            RotationRules={"AutomaticallyAfterDays": changed.rotation_days + 1},
            RotateImmediately=False,
        )
    doctor = _cli(copy, aws, "doctor", "--json", "--environment", "staging", "--timeout", "1")
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert changed.secret_name("jwt") in checks["JWT_SECRET readable"]["detail"]
    assert f"staging requires {changed.rotation_days}" in checks["JWT_SECRET rotation"]["detail"]

    # Every rendered artifact.
    artifacts("staging", changed, copy)

    # docs/deployment.md: its commands name nothing the model does not say.
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", (copy / "docs/deployment.md").read_text(), re.S))
    assert names_in(blocks) <= known_names(load_module(model_file)) | {"ecomind"}
    for name in set(re.findall(r"\$\(P (\$?\{?[A-Z_]+\}?[A-Z_]*)\)", blocks)):
        if "$" in name:
            continue  # P ${secret}_ROTATION_FUNCTION: checked by the loop's own names below
        got = subprocess.run(
            [sys.executable, str(copy / "deploy/render.py"), "staging", "--get", name], capture_output=True, text=True
        )
        assert got.returncode == 0, f"docs/deployment.md asks for {name}, which render.py does not know"


TTL_DEFAULT = ('Variable("SECRETS_CACHE_TTL", False, "300")', 'Variable("SECRETS_CACHE_TTL", False, "120")')
# What the app says of a TTL default, read in a process of its own on a copy of the repository:
# the settings, the store, and the stale threshold /ready reports.
_TTL_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from app.main import create_app
from app.secrets.store import SecretStore
from app.settings.knobs import Tuning
from app.settings.loading import load_settings

env = json.loads(sys.argv[1])
settings = load_settings(env, env_file=None)
said = {"settings": settings.secrets_cache_ttl, "store": SecretStore().ttl}
settings.close()
with TestClient(create_app(load=lambda: load_settings(env, env_file=None), tuning=Tuning(metrics_port=0))) as api:
    said["ready"] = api.get("/ready").json()["stale_after_seconds"]
print(json.dumps(said))
"""


def ttl_statements(root: Path) -> dict[str, int]:
    """What the docs state of the TTL's default and the stale threshold it gives, by statement."""
    secrets, operations = ((root / doc).read_text() for doc in ("docs/secrets.md", "docs/operations.md"))
    table = re.search(r"^\| `SECRETS_CACHE_TTL` \| no \| seconds, default (\d+),", secrets, re.M)
    stale = re.search(r"default: (\d+) x `SECRETS_CACHE_TTL`, so (\d+) s\s+with the default TTL of (\d+) s", operations)
    knob = re.search(
        r"^\| `ECOMIND_SECRETS_STALE_AFTER` \| `0` \|.*\(`0`: (\d+) x `SECRETS_CACHE_TTL`\) \|$", operations, re.M
    )
    ready = re.search(r'"stale_after_seconds": (\d+)\.0\}', operations)
    assert table and stale and knob and ready, "a statement of the TTL's default moved out of reach of this test"
    return {
        "secrets.md: the TTL's default": int(table.group(1)),
        "operations.md: the TTL's default": int(stale.group(3)),
        "operations.md: the stale threshold": int(stale.group(2)),
        "operations.md: /ready's stale threshold": int(ready.group(1)),
        "operations.md: TTLs before stale": int(stale.group(1)),
        "operations.md: TTLs before stale (knob)": int(knob.group(1)),
    }


def ttl_truth(model_module: Any) -> dict[str, int]:
    from app.telemetry import STALE_AFTER_TTLS

    ttl = int(model_module.DEFAULT_CACHE_TTL)
    return {
        "secrets.md: the TTL's default": ttl,
        "operations.md: the TTL's default": ttl,
        "operations.md: the stale threshold": STALE_AFTER_TTLS * ttl,
        "operations.md: /ready's stale threshold": STALE_AFTER_TTLS * ttl,
        "operations.md: TTLs before stale": STALE_AFTER_TTLS,
        "operations.md: TTLs before stale (knob)": STALE_AFTER_TTLS,
    }


def test_the_docs_state_the_models_cache_ttl_default() -> None:
    import app.secrets.environment as environment_model

    assert ttl_statements(REPO) == ttl_truth(environment_model)


def test_moving_the_cache_ttl_default_moves_settings_ready_the_alarms_and_the_docs_check(
    tmp_path: Path, database: Database
) -> None:
    copy = _copy_repo(tmp_path)
    model_file = copy / MODEL
    old, new = TTL_DEFAULT
    text = model_file.read_text()
    assert text.count(old) == 1, f"the TTL's default is not in the model: {old!r}"
    model_file.write_text(text.replace(old, new))
    changed = load_module(model_file)
    from app.telemetry import STALE_AFTER_TTLS

    ttl = changed.DEFAULT_CACHE_TTL
    assert ttl == 120

    # The settings, the store and /ready's stale threshold, in the app of the copy.
    environ = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    environ.update(PYTHONPATH=str(copy / "api"))
    app_env = {"DATABASE_URL": database.url(), "JWT_SECRET": "j" * 48}
    probe = subprocess.run(
        [sys.executable, "-c", _TTL_PROBE, json.dumps(app_env)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == {"settings": ttl, "store": ttl, "ready": STALE_AFTER_TTLS * ttl}

    # The alarms: every SecretStale alarm's threshold, as rendered in the copy.
    alarms = yaml.load(render("staging", "deploy/cloudformation/alarms.yaml", copy), Loader=CfnLoader)["Resources"]
    stale = [r["Properties"]["Threshold"] for name, r in alarms.items() if name.startswith("SecretStale")]
    assert stale and set(stale) == {STALE_AFTER_TTLS * ttl}
    # What docs/operations.md's alarm section prints with $(P STALE_AFTER_SECONDS).
    got = subprocess.run(
        [sys.executable, str(copy / "deploy/render.py"), "staging", "--get", "STALE_AFTER_SECONDS"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(got.stdout) == STALE_AFTER_TTLS * ttl

    # The docs: the check above holds them to the model, so the statements the copy did not
    # change are each named as wrong, and nothing else is.
    stated, truth = ttl_statements(copy), ttl_truth(changed)
    wrong = {what for what in truth if stated[what] != truth[what]}
    assert wrong == {
        "secrets.md: the TTL's default",
        "operations.md: the TTL's default",
        "operations.md: the stale threshold",
        "operations.md: /ready's stale threshold",
    }


@pytest.mark.slow
def test_secrets_prefix_moves_the_app_provision_and_the_renders(tmp_path: Path, aws: Aws) -> None:
    env = {**aws.env, "SECRETS_PREFIX": "team-a/staging"}
    plan = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "secrets",
            "provision",
            "-e",
            "staging",
            "--db-host",
            "h",
            "--dry-run",
            "--json",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert [s["name"] for s in json.loads(plan.stdout)["secrets"]] == ["team-a/staging/database", "team-a/staging/jwt"]
    copy = _copy_repo(tmp_path)
    params = copy / "deploy/environments/staging.env"
    params.write_text(params.read_text() + "SECRETS_PREFIX=team-a/staging\n")
    artifacts("staging", model("staging", "team-a/staging"), copy)


# -- 3. the docs name only what the model has -----------------------------------------------


def test_every_name_in_the_docs_is_a_name_of_the_model() -> None:
    import app.secrets.environment as environment_model
    from app.telemetry import METRICS

    known = known_names(environment_model) | {"ecomind"}
    metrics = {m.name for m in METRICS} | {"ecomind_"}  # the catalog's names (and their prefix, as grepped)
    for doc in DOCS:
        names = {n for n in names_in((REPO / doc).read_text()) if n.split("{")[0] not in metrics}
        unknown = names - known
        assert not unknown, f"{doc} names {sorted(unknown)}, which the environment model does not have"


@pytest.mark.parametrize("env", DEPLOYED)
def test_the_docs_say_ecs_injects_no_secret(env: str) -> None:
    """Both ECS tasks read their secrets themselves (references), so the execution role reads none:
    no doc may describe an injecting task or an execution role that reads a secret."""
    for task in ("api", "migration"):
        taskdef = json.loads(render(env, f"deploy/ecs/{task}.taskdef.json"))
        assert "secrets" not in taskdef and all("secrets" not in c for c in taskdef["containerDefinitions"])
    execution = json.loads(render(env, "deploy/iam/execution-role.policy.json"))
    actions = [
        a for st in execution["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    ]
    assert not [a for a in actions if a.startswith("secretsmanager:")]
    claims = (
        r"\b(api|migration) task (definition )?(\([^)]*\) )?injects\b",
        r"\bexecution role reads (exactly|only)\b",
    )
    for doc in DOCS:
        text = " ".join((REPO / doc).read_text().split())
        for claim in claims:
            found = re.search(claim, text, re.IGNORECASE)
            assert found is None, f"{doc}: '{text[max(found.start() - 40, 0) : found.end() + 40]}'"


def test_the_model_covers_every_environment() -> None:
    for env in ENVIRONMENTS:
        m = model(env)
        assert m.secret_name("DATABASE_URL") == f"{m.prefix}/database"
    assert model("production").prefix == "ecomind/prod" and model("production", "x/y/").prefix == "x/y"
