"""``ecomind migrate``, ``ecomind users create-admin`` and ``users unlock``: through the settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.options import EnvFileOpt, EnvironmentOpt, value_of
from app.cli.output import ExitCode, data, fail
from app.secrets.errors import SecretsError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["migrate", "run_alembic", "users"]

API_DIR = Path(__file__).resolve().parents[2]
ALEMBIC_INI = API_DIR / "alembic.ini"

users = typer.Typer(rich_markup_mode=None, help="Manage users.", no_args_is_help=True)


def run_alembic(args: list[str], env_file: Path, environment: str | None = None) -> int:
    """Alembic's exit code; the settings' and database's errors propagate, typed."""
    from alembic.config import main as alembic_main

    from app.data.engine import DatabaseConnectError

    os.environ.setdefault("ECOMIND_ENV_FILE", str(env_file.resolve()))
    if environment:
        os.environ["ENVIRONMENT"] = environment  # alembic/env.py loads the settings in this process
    try:
        alembic_main(argv=["-c", str(ALEMBIC_INI), *args], prog="ecomind migrate")
    except SystemExit as exc:
        return int(exc.code or 0)
    except (SecretsError, DatabaseConnectError):
        raise
    except Exception as exc:  # noqa: BLE001 - alembic/SQLAlchemy errors: one line, no traceback
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        fail(f"migration failed: {type(exc).__name__}: {first}", ExitCode.FAILED, fix="ecomind doctor")
    return 0


def migrate(
    args: Annotated[list[str] | None, typer.Argument(help="Alembic arguments; default: upgrade head.")] = None,
    environment: EnvironmentOpt = None,
    env_file: EnvFileOpt = Path(".env"),
) -> None:
    """Apply database migrations (the same as api/scripts/run_migrations.sh).

    Reads DATABASE_URL only, so the migration role needs no other secret. Concurrent
    runs are serialised by a PostgreSQL advisory lock: all succeed, the schema is
    applied once.

    Example: ecomind migrate            (or: ecomind migrate -- downgrade base)
    """
    code = run_alembic(list(args or ["upgrade", "head"]), env_file, value_of(environment))
    raise typer.Exit(code)


def _read_password() -> str:
    if sys.stdin.isatty():
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\n")


def _add_owner(session: Session, org: str, email: str, password: str) -> None:
    """The organisation (found whatever its case, or created) and its OWNER, with the audit row."""
    from sqlalchemy import func, select

    from app.auth.emails import normalized_email
    from app.auth.hashing import hash_password, shared_salt
    from app.data.tables import AuditEvent, Org, Role, User

    email_l = normalized_email(email)
    # "acme" names the organisation "Acme": one organisation, never two told apart by case.
    org_row = session.scalar(select(Org).where(func.lower(Org.name) == org.strip().lower()).order_by(Org.id))
    org = org_row.name if org_row is not None else org.strip()
    # An email is unique within an organisation (the API's rule, and its constraint).
    if org_row is not None and session.scalar(select(User.id).where(User.email == email_l, User.org_id == org_row.id)):
        fail(f"a user with email {email_l} already exists in {org}", ExitCode.FAILED)
    if org_row is None:
        org_row = Org(name=org)
        session.add(org_row)
        session.flush()
    others = select(User.password_hash).where(User.email == email_l).order_by(User.created_at, User.id)
    salt = shared_salt(session.scalars(others))  # one salt per email: login time tells no count
    user = User(org_id=org_row.id, email=email_l, password_hash=hash_password(password, salt), role=Role.OWNER.value)
    session.add(user)
    session.flush()
    session.add(AuditEvent(org_id=org_row.id, actor_id=None, action="user.bootstrap", detail={"user": str(user.id)}))
    session.commit()
    data(f"created OWNER {email_l} in organisation {org} ({org_row.id})")


@users.command("create-admin")
def create_admin(
    org: Annotated[str, typer.Option("--org", help="Organisation name (created when missing).")],
    email: Annotated[str, typer.Option("--email", help="The first user's email; they become OWNER.")],
    environment: EnvironmentOpt = None,
    env_file: EnvFileOpt = Path(".env"),
) -> None:
    """Create an organisation's first user, with the OWNER role.

    The password is read from a prompt, or from standard input when it is not a
    terminal; never from an argument (arguments show up in `ps` and shell history).

    Example: printf '%s\\n' "$PASSWORD" | ecomind users create-admin --org Acme --email ops@acme.io
    """
    from sqlalchemy.orm import Session

    from app.auth.emails import email_problem
    from app.auth.passwords import password_problem
    from app.data.engine import make_engine

    if problem := email_problem(email):
        fail(f"--email: {problem}", ExitCode.USAGE)
    password = _read_password()
    if problem := password_problem(password, [email, org]):
        fail(problem, ExitCode.USAGE)
    from app.settings.loading import load_settings

    settings = load_settings(environment=value_of(environment), env_file=env_file, secrets=("DATABASE_URL",))
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            _add_owner(session, org, email, password)
    finally:
        engine.dispose()
        settings.close()


@users.command("unlock")
def unlock(
    email: Annotated[str, typer.Option("--email", help="The locked account's email.")],
    environment: EnvironmentOpt = None,
    env_file: EnvFileOpt = Path(".env"),
) -> None:
    """Lift a login lockout now: the account's lock, failures and doubling, in Redis.

    For a user who is locked out (429 "locked for a while") and cannot wait. Reads
    REDIS_URL only. Replicas that are limiting in their own memory because Redis was
    unreachable keep their count until their window ends.

    Example: ecomind users unlock --email ops@acme.io
    """
    import redis

    from app.auth.emails import email_problem, normalized_email
    from app.auth.limits import unlock_account
    from app.settings.loading import load_settings

    if problem := email_problem(email):
        fail(f"--email: {problem}", ExitCode.USAGE)
    email = normalized_email(email)  # the form the API counts failures under
    settings = load_settings(environment=value_of(environment), env_file=env_file, secrets=("REDIS_URL",))
    try:
        if not settings.has_secret("REDIS_URL"):
            fail(
                "REDIS_URL is not set: each replica limits logins in its own memory, which no command "
                "can reach; a replica's restart, or the end of the lockout, lifts it",
                ExitCode.CONFIG,
            )
        url = settings.secret("REDIS_URL").get().value.get_secret_value()
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            deleted = unlock_account(client, email)
        except redis.RedisError as exc:
            fail(f"Redis (REDIS_URL) did not answer: {type(exc).__name__}", ExitCode.FAILED, fix="ecomind doctor")
        finally:
            client.close()
    finally:
        settings.close()
    data(f"unlocked {email}" if deleted else f"{email} was not locked and had no failures counted")
