"""The operator's journey: the command blocks of docs/deployment.md and docs/secrets.md, run as written.

Blocks marked ``<!-- journey -->`` (or ``<!-- journey as=ROLE -->``; ``twice`` after
either: the block runs a second time, which must succeed and leave the database's roles,
databases and logins as the first run left them) run in document order, deployment.md
first, in one copy of the repository, against moto's server
with IAM enforced, the AWS CLI (v1 from PyPI standing in for v2, which PyPI does not
carry), and the database the guide's rehearsal starts (its ``<!-- rehearsal database -->``
block, a PostgreSQL with SSL and password auth), with the variables it prints exported. Every block is preceded by the
first one (the guide's helpers). Blocks run as the operator's administrator unless
marked with a role; a role's credentials come from AssumeRole on the role the guide
created, holding exactly the policy of deploy/iam/ the guide put on it. (The guide's
trust policies let ECS tasks and Lambda assume the roles; here the administrator is
let in instead, the stand-in for "a process running as the role". The permission
policies are not touched.)

Between the blocks the test starts the API as the API role, with references only, and
checks it serves; after the rotation it checks the API and the doctor again.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from app.data.local import postgres_bindir, terminate, wait_port

from ..support.environment import child_env
from ..support.iam import IamMoto, start_iam_moto
from ..support.polling import wait_until
from ..support.services import MotoServer, free_port

pytestmark = [pytest.mark.journey, pytest.mark.deploy]  # the guides run the AWS CLI of .venv-deploy

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
AWS_CLI = REPO / ".venv-deploy" / "bin" / "aws"
DOCS = ("docs/deployment.md", "docs/secrets.md")
BLOCK = re.compile(r"<!-- journey(?: as=(\w+))?( twice)? -->\n```bash\n(.*?)```", re.S)
DATABASE_BLOCK = re.compile(r"<!-- rehearsal database -->\n```bash\n(.*?)```", re.S)
ROLES = {"api": "API_ROLE", "migration": "MIGRATION_ROLE", "rotation": "ROTATION_ROLE"}
ENV = "staging"


@dataclass
class Step:
    where: str
    role: str
    script: str
    twice: bool = False


def steps(root: Path) -> list[Step]:
    found = []
    for doc in DOCS:
        for n, match in enumerate(BLOCK.finditer((root / doc).read_text()), 1):
            role, twice, script = match.groups()
            found.append(Step(f"{doc}, journey block {n}", role or "admin", script, bool(twice)))
    return found


@dataclass
class RehearsalDatabase:
    """The database of docs/deployment.md's rehearsal, started by its block as written; ``exports``
    holds the variables it printed for the guide's shell (DB_HOST, DB_PORT, MASTER_URL...)."""

    proc: subprocess.Popen[str]
    exports: dict[str, str]

    @classmethod
    def start(cls, root: Path) -> RehearsalDatabase:
        found = DATABASE_BLOCK.search((root / "docs/deployment.md").read_text())
        assert found, "docs/deployment.md no longer says how to start the rehearsal's database"
        env = child_env(keep=("HOME", "LANG"))
        env["PATH"] = os.pathsep.join([str(VENV_BIN), os.environ["PATH"]])  # the guide: ecomind on the PATH
        env["REHEARSAL_DB_PORT"] = str(free_port())
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", found.group(1)],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: bash and the command stop together
        )
        database = cls(proc, {})
        printed = []
        assert proc.stdout is not None
        while "MASTER_URL_FILE" not in database.exports:
            line = proc.stdout.readline()
            if not line:
                database.stop()
                raise AssertionError("the rehearsal database did not start:\n" + "".join(printed))
            printed.append(line)
            if line.startswith("export "):
                database.exports.update(word.split("=", 1) for word in shlex.split(line)[1:])
        return database

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)

    def superuser(self) -> Any:
        import psycopg

        return psycopg.connect(self.exports["MASTER_URL"], passfile=self.exports["PGPASSFILE"], autocommit=True)


class JourneyFailed(AssertionError):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step} failed:\n{detail}")
        self.step = step


@dataclass
class Journey:
    root: Path
    moto: MotoServer
    database: RehearsalDatabase
    admin: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    api: subprocess.Popen[bytes] | None = None
    api_port: int = 0

    # -- AWS identities ------------------------------------------------------------------
    def client(self, service: str, creds: dict[str, str] | None = None) -> Any:
        creds = creds or self.admin
        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.moto.url,
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=creds.get("AWS_SESSION_TOKEN"),
        )

    def param(self, name: str) -> str:
        return subprocess.run(
            [sys.executable, str(self.root / "deploy/render.py"), ENV, "--get", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def role(self, role: str) -> dict[str, str]:
        name = self.param(ROLES[role])
        iam = self.client("iam")
        operator = iam.get_user(UserName="operator")["User"]["Arn"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": operator}, "Action": "sts:AssumeRole"}],
        }
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        creds = self.client("sts").assume_role(RoleArn=arn, RoleSessionName="journey")["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
        }

    # -- the shell of the guide ------------------------------------------------------------
    def environ(self, creds: dict[str, str], doc: str) -> dict[str, str]:
        tools = self.root / ".journey-bin"
        env = {
            "PATH": os.pathsep.join(
                [str(VENV_BIN), str(tools), str(postgres_bindir()), "/usr/local/bin", "/usr/bin", "/bin"]
            ),
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "AWS_ENDPOINT_URL": self.moto.url,
            **self.database.exports,
            **creds,
        }
        if doc == "docs/secrets.md":
            env["AWS_REGION"] = "us-east-1"  # secrets.md: "with AWS_REGION set, as everywhere in this guide"
        return env

    def run_step(self, step: Step, helpers: str) -> None:
        creds = self.admin if step.role == "admin" else self.role(step.role)
        script = f"set -euo pipefail\n{helpers}\n{step.script}"
        doc = step.where.split(",")[0]
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.root,
            env=self.environ(creds, doc),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        self.outputs.append(result.stdout + result.stderr)
        if result.returncode != 0:
            raise JourneyFailed(
                f"{step.where} (as {step.role})",
                f"{step.script}\n--- exit {result.returncode}\n{result.stdout}\n{result.stderr}",
            )

    # -- the API, as the API role ----------------------------------------------------------
    def start_api(self) -> None:
        self.api_port = free_port()
        env = {
            **self.environ(self.role("api"), "api"),
            "ENVIRONMENT": ENV,
            "AWS_REGION": self.param("AWS_REGION"),
            "SECRETS_PREFIX": self.param("SECRETS_PREFIX"),
            "ECOMIND_METRICS_PORT": "0",  # beside `make run` and the other tests
        }
        self.api = subprocess.Popen(
            [str(VENV_BIN / "uvicorn"), "app.asgi:app", "--host", "127.0.0.1", "--port", str(self.api_port)],
            cwd=self.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port("127.0.0.1", self.api_port, timeout=60)

    def ready(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/ready", timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def doctor(self, role: str) -> subprocess.CompletedProcess[str]:
        env = {**self.environ(self.role(role), "docs/secrets.md")}
        return subprocess.run(
            [str(VENV_BIN / "ecomind"), "doctor", "--environment", ENV, "--json"],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def database_state(self) -> dict[str, Any]:
        """What a database block leaves: every role with its attributes, every database with its owner,
        and whether the database secret's password logs in (a password's hash has a new salt each time)."""
        import psycopg

        with self.database.superuser() as conn:
            roles = conn.execute(
                "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolinherit, rolreplication,"
                " rolbypassrls, rolconnlimit, rolvaliduntil FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1"
            ).fetchall()
            databases = conn.execute("SELECT datname, pg_get_userbyid(datdba) FROM pg_database ORDER BY 1").fetchall()
        secret = json.loads(self.secret(self.param("DATABASE_SECRET_NAME")))
        try:
            psycopg.connect(
                host=self.database.exports["DB_HOST"],
                port=self.database.exports["DB_PORT"],
                user=secret["username"],
                password=secret["password"],
                dbname=secret["dbname"],
                connect_timeout=5,
            ).close()
            logs_in = True
        except psycopg.OperationalError:
            logs_in = False
        return {"roles": roles, "databases": databases, "the secret's password logs in": logs_in}

    def secret(self, name: str, stage: str = "AWSCURRENT") -> str:
        return str(self.client("secretsmanager").get_secret_value(SecretId=name, VersionStage=stage)["SecretString"])


def _copy(tmp: Path, source: Path = REPO) -> Path:
    root = tmp / "repo"
    for part in ("deploy", "docs", "api/app"):
        shutil.copytree(source / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    # The rotation zip the guide's `make lambda` builds: moto's functions never run it,
    # so the handlers' sources are enough to create them.
    (root / "build").mkdir()
    with zipfile.ZipFile(root / "build/rotation-lambda.zip", "w") as zf:
        for path in (REPO / "api/app/rotation").glob("*.py"):
            zf.write(path, f"app/rotation/{path.name}")
    tools = root / ".journey-bin"
    tools.mkdir()
    (tools / "aws").symlink_to(AWS_CLI)
    return root


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Path, IamMoto, RehearsalDatabase]]:
    """A copy of the repository, moto with IAM enforced, and the rehearsal's database started in it."""
    if not AWS_CLI.exists():
        pytest.fail("the AWS CLI is missing from .venv-deploy: run make deploy-tools")
    root = _copy(tmp_path)
    # AWS-managed policies (AWSLambdaVPCAccessExecutionRole) exist in moto only when loaded.
    iam = start_iam_moto(env={"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}, admin="operator")
    iam[0].configure({"lambda": {"use_docker": False}})
    database = RehearsalDatabase.start(root)
    yield root, iam, database
    database.stop()
    iam[0].stop()


def run_journey(root: Path, iam: IamMoto, database: RehearsalDatabase) -> Journey:
    admin = {name: iam[1][name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    journey = Journey(root, iam[0], database, admin)
    found = steps(root)
    helpers = found[0].script
    try:
        for step in found:
            journey.run_step(step, helpers)
            if step.twice:
                first = journey.database_state()
                assert first["the secret's password logs in"], f"{step.where}: {first}"
                journey.run_step(step, helpers)
                assert journey.database_state() == first, f"{step.where}, run again, changed the database"
            if step.role == "migration":
                journey.start_api()
                wait_until(lambda: journey.ready() == 200, 60, "the API, as the API role, ready", 0.5)
    except BaseException:
        terminate(journey.api)
        raise
    return journey


def test_the_journey_runs_as_written(stack: tuple[Path, IamMoto, RehearsalDatabase]) -> None:
    root, iam, database = stack
    assert len(steps(root)) >= 10, "the guides have lost their journey blocks"
    database_name = subprocess.run(
        [sys.executable, str(root / "deploy/render.py"), ENV, "--get", "DATABASE_SECRET_NAME"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    journey = run_journey(root, iam, database)
    try:
        assert journey.api is not None, "no migration step ran, so the API was never started"
        assert any(step.twice for step in steps(root)), "no block is checked to run twice"
        # The rotation block changed the password; the API still serves, the doctor (as the
        # API role, which may describe its secrets) passes every check, rotation included.
        assert journey.ready() == 200
        doctor = journey.doctor("api")
        report = json.loads(doctor.stdout)
        assert doctor.returncode == 0, [c for c in report["checks"] if c["status"] != "ok"]
        names = {c["name"] for c in report["checks"]}
        assert {"DATABASE_URL rotation", "JWT_SECRET rotation", "database reachable"} <= names
        history = journey.client("secretsmanager").list_secret_version_ids(SecretId=database_name)["Versions"]
        assert len(history) >= 2, "the rotation block did not rotate"
        current, previous = journey.secret(database_name), journey.secret(database_name, "AWSPREVIOUS")
        secrets = [json.loads(current)["password"], json.loads(previous)["password"]]
        for text in [*journey.outputs, doctor.stdout, doctor.stderr]:
            for value in secrets:
                assert value not in text, "a password reached the output of a documented command"
    finally:
        terminate(journey.api)


def test_a_broken_policy_stops_the_journey_at_the_step_that_needs_it(
    stack: tuple[Path, IamMoto, RehearsalDatabase],
) -> None:
    root, iam, database = stack
    policy = root / "deploy/iam/migration-task-role.policy.json"
    text = policy.read_text()
    assert '"Action": "secretsmanager:GetSecretValue"' in text
    policy.write_text(
        text.replace('"Action": "secretsmanager:GetSecretValue"', '"Action": "secretsmanager:ListSecrets"')
    )
    with pytest.raises(JourneyFailed) as failed:
        run_journey(root, iam, database)
    assert "as migration" in failed.value.step
    assert "access to aws-secretsmanager:ecomind/staging/database denied" in str(failed.value)
