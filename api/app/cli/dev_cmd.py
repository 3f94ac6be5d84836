"""``ecomind dev``: the API on this machine, with the services it needs started for it."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import SplitResult, unquote, urlsplit

import typer

from app.cli.db_cmd import run_alembic
from app.cli.output import ExitCode, data, fail, say
from app.secrets.environment import POSTGRES_PORT

if TYPE_CHECKING:
    from app.data.local import LocalPostgres, LocalRedis

    Service = LocalPostgres | LocalRedis

__all__ = ["LOCAL_HOSTS", "dev"]

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
DEFAULT_PORT = 8000


def _check_foreign_server(database_url: str, port: int) -> None:
    """Something that is not this project's PostgreSQL listens on the port of .env: does it let us in?"""
    import psycopg

    from app.data.engine import connect_args
    from app.data.failures import classify

    try:
        psycopg.connect(**connect_args(database_url), connect_timeout=3).close()
    except psycopg.Error as exc:
        failure = classify(exc)
        if failure.kind in ("auth", "no_database"):
            fail(
                f"another PostgreSQL (not this project's) listens on 127.0.0.1:{port} and refused the DATABASE_URL "
                f"of .env ({failure.summary})",
                ExitCode.DATABASE,
                fix=".venv/bin/ecomind init --force   # a new .env on free ports (the old one is kept as .env.bak); "
                "then: make run",
            )
        raise


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _taken(host: str, port: int) -> bool:
    """Whether the port cannot be served on ``host`` now (another copy of the API, or anything)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _check_port(host: str, port: int) -> None:
    if not _taken(host, port):
        return
    free = next((p for p in range(port + 1, min(port + 100, 65536)) if not _taken(host, p)), 0)
    fail(
        f"port {port} is in use on {host} (another `make run`?)",
        ExitCode.CONFIG,
        fix=f"PORT={free} make run   # or: ecomind dev --port {free}",
    )


def _metrics_port(port: int) -> None:
    """Beside another copy on another port, a copy's metrics need another port too: unless
    ECOMIND_METRICS_PORT says otherwise, the metrics port moves with the API's (9464 for 8000,
    9465 for 8001...)."""
    from app.settings.knobs import KNOBS
    from app.telemetry import METRICS_PORT

    name = KNOBS["metrics_port"]
    if os.environ.get(name, "").strip():
        return
    derived = METRICS_PORT + port - DEFAULT_PORT
    os.environ[name] = str(derived if 1024 <= derived <= 65535 and derived != port else 0)


def _startup_exit_code() -> int | None:
    """The exit code of the API's failed start (app.main.StartupError), read from the app that
    uvicorn imported in this process; None when it did not fail that way."""
    served = sys.modules.get("app.asgi")
    failure = getattr(getattr(getattr(served, "app", None), "state", None), "startup_failure", None)
    code = getattr(failure, "exit_code", None)
    return code if isinstance(code, int) else None


def _local_postgres(database_url: str, source: str, data_dir: Path, port: int, started: list[Service]) -> None:
    """A DATABASE_URL on this machine with nothing listening: start the project's PostgreSQL (added to
    ``started``); then, on a server of this project, its role and database, created when missing."""
    from app.data.local import LocalPostgres, port_open

    url = urlsplit(database_url)
    if url.hostname not in LOCAL_HOSTS:
        return
    db_port = url.port or POSTGRES_PORT
    pg = LocalPostgres(data_dir / "postgres", db_port)
    if pg.relocated:
        data(f"the server runs as the postgres user, which cannot reach {pg.asked}: its data is in {pg.root}")
    again = f"PORT={port} make run" if port != DEFAULT_PORT else "make run"
    if not port_open("127.0.0.1", db_port):
        other = pg.running_port()
        if other is not None:
            fail(
                f"the project's PostgreSQL (data in {pg.root}) runs on 127.0.0.1:{other} for another "
                f"`make run`; DATABASE_URL (from {source}) points at port {db_port}",
                ExitCode.DATABASE,
                fix=f"{again}   # once the other make run is stopped (Ctrl-C in its terminal): this one "
                f"then starts it on port {db_port}",
            )
        data(f"starting a local PostgreSQL on 127.0.0.1:{db_port} (data in {pg.root})")
        pg.start()
        started.append(pg)
    elif not pg.serves_port():
        _check_foreign_server(database_url, db_port)
    else:
        data(f"using the PostgreSQL on 127.0.0.1:{db_port} that another `make run` started (it stops with it)")
    if pg.serves_port():
        _ensure_role(pg, url, source, again, reset_password=pg in started)


def _ensure_role(pg: LocalPostgres, url: SplitResult, source: str, again: str, *, reset_password: bool) -> None:
    """The role and database of DATABASE_URL on the project's server, created when missing."""
    from app.data.local import RoleHasAnotherPassword, ensure_role_and_database

    db_port = pg.port
    user = unquote(url.username or "ecomind")
    # A server another copy started serves that copy with the password it was set up with:
    # changing it would log that copy out (503s). One started here serves no one else yet.
    try:
        reset = ensure_role_and_database(
            pg.superuser_dsn(),
            user=user,
            password=unquote(url.password or ""),
            dbname=unquote(url.path.lstrip("/")),
            reset_password=reset_password,
        )
    except RoleHasAnotherPassword:
        fail(
            f"the project's PostgreSQL on 127.0.0.1:{db_port}, which another `make run` started and "
            f"uses, refuses the password of DATABASE_URL (from {source}): its role {user} has the "
            "password of the .env that copy started with",
            ExitCode.DATABASE,
            fix=f"{again}   # once the other make run is stopped (Ctrl-C in its terminal): this one "
            f"then starts the PostgreSQL and gives {user} the password of DATABASE_URL",
        )
    if reset:
        data(
            f"the role {user} had another password (an earlier .env's): it now has the one of "
            f"DATABASE_URL (from {source})"
        )


def _local_redis(redis: str | None, started: list[Service]) -> None:
    """A REDIS_URL on this machine with nothing listening: start a Redis (added to ``started``);
    without the binary, a warning and the API runs without it."""
    from app.data.local import LocalRedis, port_open

    redis_url = urlsplit(redis) if redis else None
    if redis_url is None or redis_url.hostname not in LOCAL_HOSTS:
        return
    redis_port = redis_url.port or 6379
    if not port_open("127.0.0.1", redis_port):
        try:
            started.append(LocalRedis(redis_port).start())
            data(f"started a local Redis on 127.0.0.1:{redis_port}")
        except FileNotFoundError as exc:
            say(f"warning: {exc}; /ready will report redis unavailable", err=True)


def _serve(host: str, port: int, env_file: Path) -> None:
    """Migrations to head, then uvicorn until it stops; a failed start exits with the API's kind."""
    import uvicorn

    from app.api.serving import UVICORN_OPTIONS

    code = run_alembic(["upgrade", "head"], env_file)
    if code != 0:
        raise typer.Exit(code)
    data(f"serving the EcoMind API on http://{host}:{port} (Ctrl-C stops it)")
    # uvicorn re-raises SIGTERM after its graceful shutdown; turning it into
    # SystemExit lets the caller's finally stop the services it started.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Nothing stands in front of `ecomind dev`: the client address is the TCP peer. uvicorn
    # would otherwise believe X-Forwarded-For from 127.0.0.1, letting any local client pick
    # the address the login limits count. Behind a local proxy, set FORWARDED_ALLOW_IPS.
    proxied = bool(os.environ.get("FORWARDED_ALLOW_IPS"))
    try:
        uvicorn.run("app.asgi:app", host=host, port=port, log_level="info", proxy_headers=proxied, **UVICORN_OPTIONS)
    except SystemExit:
        # uvicorn exits 3 on any failed start; the API said why in one line: exit with its kind.
        code = _startup_exit_code()
        if code is None:
            raise
        raise typer.Exit(code) from None


def dev(
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on (the metrics move with it).")] = DEFAULT_PORT,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where a project-local PostgreSQL keeps its data.")
    ] = Path(".data"),
) -> None:
    """Run the API locally: .env, a local PostgreSQL (and Redis) when none runs, migrations, uvicorn.

    When DATABASE_URL points at this machine and nothing listens there, a PostgreSQL
    is started from the machine's server binaries with its data under .data/, and the
    role and database of DATABASE_URL are created when missing. A role that exists keeps
    its password when another `make run` started the server (this command then stops,
    saying so); on a server started here it gets the password of DATABASE_URL. Services
    started here are stopped when the API stops.

    Example: ecomind dev --port 8000
    """
    from app.cli.init_cmd import init
    from app.settings.loading import load_settings

    _check_port(host, port)
    _metrics_port(port)
    env_file = Path(".env")
    if not env_file.exists():
        init(force=False, path=env_file, example=None)
    settings = load_settings(env_file=env_file)
    if settings.environment != "development":
        settings.close()
        fail("`ecomind dev` is for development", ExitCode.CONFIG, fix="unset ENVIRONMENT (or ENVIRONMENT=development)")
    database_url = settings.secret("DATABASE_URL").get().value.get_secret_value()
    source = settings.origins["DATABASE_URL"].describe()
    redis = settings.secret("REDIS_URL").get().value.get_secret_value() if settings.has_secret("REDIS_URL") else None
    settings.close()
    started: list[Service] = []
    try:
        _local_postgres(database_url, source, data_dir, port, started)
        _local_redis(redis, started)
        _serve(host, port, env_file)
    finally:
        for service in reversed(started):
            service.stop()
