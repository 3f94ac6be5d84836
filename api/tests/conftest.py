"""Shared fixtures: a real moto server over HTTP, a counting proxy, the CLI as a subprocess."""

from __future__ import annotations

import io
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest

from .support.awsproxy import AwsProxy
from .support.environment import child_env
from .support.iam import IamMoto, admin_client, start_iam_moto, user_with
from .support.services import MotoServer, free_port

# A value that must never be printed or logged; tests put it through error paths.
CANARY = "canary-Zq8xV3r7f3a9c1e5b2d4f60-never-print-me"
REGION = "us-east-1"
ECOMIND = str(Path(sys.executable).with_name("ecomind"))

# Every API the tests start (in-process or under uvicorn) serves its metrics on a free port:
# tests run side by side with `make run` and with each other.
os.environ.setdefault("ECOMIND_METRICS_PORT", "0")


@dataclass
class Aws:
    client: Any
    env: dict[str, str]
    url: str

    def create(self, name: str, value: str, region: str = REGION) -> str:
        client = (
            self.client
            if region == REGION
            else boto3.client("secretsmanager", region_name=region, endpoint_url=self.url)
        )
        return str(client.create_secret(Name=name, SecretString=value)["ARN"])


@pytest.fixture(scope="session", autouse=True)
def canary_never_logged() -> Iterator[None]:
    """Every log record of the whole session is kept; none may contain the canary."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("tests").info("canary check armed")
    yield
    root.removeHandler(handler)
    root.setLevel(previous)
    text = buffer.getvalue()
    assert "canary check armed" in text, "the session log capture does not work: the canary check would be vacuous"
    assert CANARY not in text, "the canary secret reached a log record during the test session"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Aws:
    moto.reset()
    env = {
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto.url)
    return Aws(client, env, moto.url)


@pytest.fixture(scope="session")
def stock_moto() -> Iterator[MotoServer]:
    """moto's own moto_server, unpatched (no IAM enforced): an emulator other than the project's."""
    server = MotoServer(stock=True).start()
    yield server
    server.stop()


@pytest.fixture
def stock_aws(stock_moto: MotoServer, aws: Aws) -> Aws:
    """As ``aws``, on stock moto_server: what moto does where the project's server answers as AWS."""
    stock_moto.reset()
    env = {**aws.env, "AWS_ENDPOINT_URL": stock_moto.url}
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=stock_moto.url)
    return Aws(client, env, stock_moto.url)


@pytest.fixture
def proxy(moto: MotoServer, aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsProxy]:
    """A counting proxy; AWS_ENDPOINT_URL points at it for the test."""
    p = AwsProxy(moto.url).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
    aws.env["AWS_ENDPOINT_URL"] = p.url
    yield p
    p.stop()


_OPENED: list[Any] = []
T = TypeVar("T")


def opened(thing: T) -> T:
    """Track a store or settings object; it is closed when the test ends, even after a failure."""
    _OPENED.append(thing)
    return thing


@pytest.fixture(autouse=True)
def _close_what_the_test_opened() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


@dataclass
class Cli:
    cwd: Path

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        base = child_env(keep=("PATH", "HOME", "LANG", "SYSTEMROOT"))
        base["COLUMNS"] = "200"
        base.update(env or {})
        return subprocess.run(
            [ECOMIND, *args],
            cwd=self.cwd,
            env=base,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Runs `ecomind` in an empty folder (no .env) with only the environment given."""
    return Cli(tmp_path)


def assert_clean(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    """No traceback and none of ``secrets`` in what a command printed."""
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    for secret in (CANARY, *secrets):
        assert secret not in text, f"a secret value was printed:\n{text}"


# -- PostgreSQL and Redis ------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL with scram-sha-256 password auth on a free loopback port."""
    from app.data.local import LocalPostgres

    root = Path(tempfile.mkdtemp(prefix="ecomind-pg-"))
    server = LocalPostgres(root, free_port()).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    from app.data.local import LocalRedis

    server = LocalRedis(free_port()).start()
    yield server
    server.stop()


@dataclass
class Database:
    name: str
    user: str
    password: str
    port: int
    admin_dsn: str

    def url(self, password: str | None = None) -> str:
        return f"postgresql://{self.user}:{password or self.password}@127.0.0.1:{self.port}/{self.name}"

    def rds_secret(self, password: str | None = None, **extra: Any) -> str:
        """The secret in the shape AWS's RDS rotation writes."""
        import json

        fields = {"engine": "postgres", "host": "127.0.0.1", "port": self.port, "dbname": self.name}
        return json.dumps({**fields, "username": self.user, "password": password or self.password, **extra})

    def set_password(self, password: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(self.user), sql.Literal(password)))
        self.password = password


def new_database(postgres: Any) -> Database:
    """A fresh empty database owned by a fresh login role; the password embeds the canary."""
    from app.data.local import ensure_role_and_database

    suffix = secrets.token_hex(4)
    db = Database(f"db_{suffix}", f"app_{suffix}", f"{CANARY}-{suffix}", postgres.port, postgres.superuser_dsn())
    ensure_role_and_database(db.admin_dsn, user=db.user, password=db.password, dbname=db.name)
    return db


@pytest.fixture
def database(postgres: Any) -> Database:
    """A fresh database and login role; the password embeds the canary."""
    return new_database(postgres)


@pytest.fixture(scope="session")
def migrated_template(postgres: Any) -> Database:
    """A database ``ecomind migrate`` brought to head once per session (per xdist worker: each has its
    own PostgreSQL), to be cloned by ``migrated``. Nothing connects to it after the migration."""
    import psycopg
    from psycopg import sql

    from app.data.local import ensure_role_and_database

    suffix = secrets.token_hex(4)
    template = Database(
        f"template_{suffix}", f"migrator_{suffix}", f"{CANARY}-{suffix}", postgres.port, postgres.superuser_dsn()
    )
    # The superuser owns the template database itself (REASSIGN OWNED in a clone then moves no database);
    # the migrating role owns what the migrations create.
    ensure_role_and_database(template.admin_dsn, user=template.user, password=template.password, dbname="postgres")
    with psycopg.connect(template.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template.name)))
    with psycopg.connect(postgres.superuser_dsn(template.name), autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(template.user)))
    result = migrate(template.url())
    assert result.returncode == 0, result.stderr
    return template


@pytest.fixture
def migrated(postgres: Any, migrated_template: Database) -> Database:
    """A fresh database and login role at the migrations' head, as ``ecomind migrate`` leaves one run by
    that role: a clone of the session's migrated template whose objects the new role owns."""
    import psycopg
    from psycopg import sql

    from app.data.local import ensure_role_and_database

    suffix = secrets.token_hex(4)
    db = Database(f"db_{suffix}", f"app_{suffix}", f"{CANARY}-{suffix}", postgres.port, postgres.superuser_dsn())
    ensure_role_and_database(db.admin_dsn, user=db.user, password=db.password, dbname="postgres")
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(db.name), sql.Identifier(migrated_template.name), sql.Identifier(db.user)
            )
        )
    with psycopg.connect(postgres.superuser_dsn(db.name), autocommit=True) as conn:
        # Tables, sequences and types of the clone pass to its role; the template's role keeps nothing here.
        owners = sql.Identifier(migrated_template.user), sql.Identifier(db.user)
        conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(*owners))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(owners[0]))
    return db


def migrate(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`ecomind migrate` in a subprocess, as an init container runs it."""
    env = child_env()
    env["DATABASE_URL"] = url
    return subprocess.run(
        [ECOMIND, "migrate", *args], env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def iam() -> Iterator[IamMoto]:
    """moto enforcing IAM, and its administrator's environment (tests/support/iam.py makes users)."""
    server, admin = start_iam_moto()
    yield server, admin
    server.stop()


@pytest.fixture(scope="session")
def iam_moto() -> Iterator[IamMoto]:
    """moto enforcing IAM with the production secrets, and the environment of ecomind-api: a known key
    with no policy at all."""
    iam = start_iam_moto()
    sm = admin_client(iam)
    sm.create_secret(Name="ecomind/prod/database", SecretString=CANARY)
    sm.create_secret(Name="ecomind/prod/jwt", SecretString="k" * 48)
    api = user_with(iam, "ecomind-api", [])
    yield (
        iam[0],
        {name: api[name] for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")},
    )
    iam[0].stop()
