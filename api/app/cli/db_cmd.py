"""``ecomind migrate``, ``ecomind users create-admin`` and ``ecomind dev``."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

import typer

from ..secrets.errors import SettingsError
from ..settings import load_settings
from .output import err, fail, guarded, out

__all__ = ["create_admin", "dev", "migrate", "users"]

API_DIR = Path(__file__).resolve().parents[2]
ALEMBIC_INI = API_DIR / "alembic.ini"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}

users = typer.Typer(help="Manage users.", no_args_is_help=True)


def run_alembic(args: list[str], env_file: Path) -> int:
    from alembic.config import main as alembic_main

    os.environ.setdefault("ECOMIND_ENV_FILE", str(env_file.resolve()))
    try:
        alembic_main(argv=["-c", str(ALEMBIC_INI), *args], prog="ecomind migrate")
    except SystemExit as exc:
        return int(exc.code or 0)
    except SettingsError as exc:
        err.print(str(exc), markup=False)
        return 1
    except Exception as exc:  # noqa: BLE001 - alembic/SQLAlchemy errors: one line, no traceback
        err.print(f"error: migration failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", markup=False)
        return 1
    return 0


def migrate(
    args: Annotated[list[str] | None, typer.Argument(help="Alembic arguments; default: upgrade head.")] = None,
    env_file: Annotated[Path, typer.Option("--env-file", help=".env read in development.")] = Path(".env"),
) -> None:
    """Apply database migrations (the same as ./scripts/run_migrations.sh).

    Concurrent runs are serialised by a PostgreSQL advisory lock: all succeed,
    the schema is applied once.

    Example: ecomind migrate            (or: ecomind migrate -- downgrade base)
    """
    code = run_alembic(list(args or ["upgrade", "head"]), env_file)
    raise typer.Exit(code)


def _read_password() -> str:
    if sys.stdin.isatty():
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\n")


@users.command("create-admin")
@guarded
def create_admin(
    org: Annotated[str, typer.Option("--org", help="Organisation name (created when missing).")],
    email: Annotated[str, typer.Option("--email", help="The first user's email; they become OWNER.")],
    env_file: Annotated[Path, typer.Option("--env-file", help=".env read in development.")] = Path(".env"),
) -> None:
    """Create an organisation's first user, with the OWNER role.

    The password is read from a prompt, or from standard input when it is not a
    terminal; never from an argument (arguments show up in `ps` and shell history).

    Example: printf '%s\\n' "$PASSWORD" | ecomind users create-admin --org Acme --email ops@acme.io
    """
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ..db import make_engine
    from ..models import AuditEvent, Org, Role, User
    from ..security import hash_password

    password = _read_password()
    from ..passwords import password_problem

    if problem := password_problem(password, [email, org]):
        raise fail(problem)
    settings = load_settings(env_file=env_file, secrets=("DATABASE_URL",))
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            email_l = email.strip().lower()
            if session.scalar(select(User.id).where(User.email == email_l)) is not None:
                raise fail(f"a user with email {email_l} already exists")
            org_row = session.scalar(select(Org).where(Org.name == org))
            if org_row is None:
                org_row = Org(name=org)
                session.add(org_row)
                session.flush()
            user = User(org_id=org_row.id, email=email_l, password_hash=hash_password(password), role=Role.OWNER.value)
            session.add(user)
            session.flush()
            session.add(
                AuditEvent(org_id=org_row.id, actor_id=None, action="user.bootstrap", detail={"user": str(user.id)})
            )
            session.commit()
            out.print(f"created OWNER {email_l} in organisation {org} ({org_row.id})")
    finally:
        engine.dispose()
        settings.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def dev(
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where a project-local PostgreSQL keeps its data.")
    ] = Path(".data"),
) -> None:
    """Run the API locally: .env, a local PostgreSQL (and Redis) when none runs, migrations, uvicorn.

    When DATABASE_URL points at this machine and nothing listens there, a PostgreSQL
    is started from the machine's server binaries with its data under .data/, and the
    role and database of DATABASE_URL are created. Services started here are stopped
    when the API stops.

    Example: ecomind dev --port 8000
    """
    import uvicorn

    from ..localdb import LocalPostgres, LocalRedis, ensure_role_and_database, port_open
    from .init_cmd import init

    env_file = Path(".env")
    if not env_file.exists():
        init(force=False, path=env_file, example=None)
    try:
        settings = load_settings(env_file=env_file)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    if settings.environment != "development":
        raise fail("`ecomind dev` is for development; unset ENVIRONMENT or set it to development")
    url = urlsplit(settings.database_url.get_secret_value())
    redis_url = urlsplit(settings.redis_url.get_secret_value()) if settings.redis_url else None
    settings.close()
    started: list[LocalPostgres | LocalRedis] = []
    try:
        if url.hostname in LOCAL_HOSTS:
            db_port = url.port or 5432
            pg = LocalPostgres(data_dir / "postgres", db_port)
            if not port_open("127.0.0.1", db_port):
                out.print(f"starting a local PostgreSQL on 127.0.0.1:{db_port} (data in {pg.root})")
                pg.start()
                started.append(pg)
            if pg.initialised():
                ensure_role_and_database(
                    pg.superuser_dsn(),
                    user=unquote(url.username or "ecomind"),
                    password=unquote(url.password or ""),
                    dbname=unquote(url.path.lstrip("/")),
                )
        if redis_url is not None and redis_url.hostname in LOCAL_HOSTS:
            redis_port = redis_url.port or 6379
            if not port_open("127.0.0.1", redis_port):
                try:
                    started.append(LocalRedis(redis_port).start())
                    out.print(f"started a local Redis on 127.0.0.1:{redis_port}")
                except FileNotFoundError as exc:
                    err.print(f"warning: {exc}; /ready will report redis unavailable", markup=False)
        code = run_alembic(["upgrade", "head"], env_file)
        if code != 0:
            raise typer.Exit(code)
        out.print(f"serving the EcoMind API on http://{host}:{port} (Ctrl-C stops it)")
        # uvicorn re-raises SIGTERM after its graceful shutdown; turning it into
        # SystemExit lets the finally below stop the services we started.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        uvicorn.run("app.main:app", host=host, port=port, log_level="info")
    finally:
        for service in reversed(started):
            service.stop()
