"""``ecomind local-postgres``: a PostgreSQL with SSL on this machine, for rehearsing the deployment.

Staging and production add ``sslmode=require`` to the database URL, and `make run`'s
PostgreSQL has no SSL; the guide's section 4 also makes the application role the owner
of the database ``ecomind``, the name `make run` uses. So a rehearsal of
docs/deployment.md gets a server of its own: its own data folder and port, a
self-signed certificate (``sslmode=require`` works, ``verify-*`` cannot), password
auth, and its superuser's password only in files that the printed variables name.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

import typer

from app.cli.dev_cmd import LOCAL_HOSTS
from app.cli.output import ExitCode, data, fail

if TYPE_CHECKING:
    from app.data.local import LocalPostgres

__all__ = ["local_postgres", "ssl_fix"]

DEFAULT_PORT = 15432
DEFAULT_DATA_DIR = Path(".data/rehearsal-postgres")
MAKE_RUN_DATA_DIR = Path(".data/postgres")  # `ecomind dev`'s --data-dir, then postgres/
SUPERUSER = "postgres"


def ssl_fix(host: str | None, environment: str | None = None) -> str:
    """The fix when the database server refused SSL, which staging and production require.

    On this machine it is a rehearsal (or `make run`'s server, which has no SSL): a server
    with SSL is one command away. Elsewhere the server itself must offer SSL; RDS does.
    """
    requires = f" ({environment})" if environment else ""
    if host in LOCAL_HOSTS:
        return (
            f"ecomind local-postgres --port {DEFAULT_PORT}   # a PostgreSQL with SSL on this machine, apart from "
            "make run's (which has none); then run docs/deployment.md from section 4 with the DB_HOST, DB_PORT and "
            "MASTER_URL it prints"
        )
    return f"ecomind config show   # DATABASE_URL must reach a server with SSL{requires}; RDS has it"


def _private_file(path: Path, text: str) -> None:
    """``text`` in ``path``, readable by its owner only, from the first byte on."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _print_exports(server: LocalPostgres, port: int) -> None:
    """The superuser's password in two private files (libpq's password file and MASTER_URL_FILE),
    and the shell lines that export where the server is and where those files are."""
    password = server.superuser_password
    pgpass, master_file = server.root / "pgpass", server.root / "master-url"
    # libpq's password file: psql reads it for MASTER_URL, which then holds no password.
    _private_file(pgpass, f"127.0.0.1:{port}:*:{SUPERUSER}:{password}\n")
    master = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres?sslmode=require"
    with_password = f"postgresql://{SUPERUSER}:{quote(password, safe='')}@127.0.0.1:{port}/postgres"
    _private_file(master_file, f"{with_password}?sslmode=require\n")
    # Every line is shell: the whole output pastes as it is into the guide's shell.
    data(
        f"# PostgreSQL with SSL (self-signed: sslmode=require, not verify-ca/verify-full) on 127.0.0.1:{port}, "
        f"data in {server.root}; Ctrl-C stops it. In the shell you run docs/deployment.md in:"
    )
    data(f"export DB_HOST=127.0.0.1 DB_PORT={port}")
    data(f"export MASTER_URL={shlex.quote(master)} PGPASSFILE={shlex.quote(str(pgpass))}")
    data(f"export MASTER_URL_FILE={shlex.quote(str(master_file))}")
    data(f"# the password of the superuser {SUPERUSER} is in those two files (mode 600), never printed")


def local_postgres(
    port: Annotated[int, typer.Option(help="Port to listen on, on 127.0.0.1 only.")] = DEFAULT_PORT,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where its data goes; never make run's (.data/postgres).")
    ] = DEFAULT_DATA_DIR,
) -> None:
    """Run a PostgreSQL with SSL for rehearsing docs/deployment.md; Ctrl-C stops it.

    Its own data folder and port, a self-signed certificate (sslmode=require), password
    auth. It prints what to export in the shell the guide runs in: DB_HOST, DB_PORT,
    MASTER_URL (the superuser postgres, with PGPASSFILE for psql) and MASTER_URL_FILE
    (for `ecomind secrets rotate --local --master-url-file`). Run again, it serves the
    same data with the same superuser password.

    Example: ecomind local-postgres --port 15432
    """
    from app.data.local import LocalPostgres, free_port, port_open

    if data_dir.resolve() == MAKE_RUN_DATA_DIR.resolve():
        fail(
            f"{data_dir} holds make run's PostgreSQL, which the guide's section 4 would take over",
            ExitCode.USAGE,
            fix=f"ecomind local-postgres --port {port} --data-dir {DEFAULT_DATA_DIR}",
        )
    if port_open("127.0.0.1", port):
        fail(
            f"port {port} is in use on 127.0.0.1 (make run's PostgreSQL, this command in another terminal, "
            "or another server)",
            ExitCode.CONFIG,
            fix=f"ecomind local-postgres --port {free_port()}"
            + (f" --data-dir {shlex.quote(str(data_dir))}" if data_dir != DEFAULT_DATA_DIR else ""),
        )
    try:
        server = LocalPostgres(data_dir, port, ssl=True)
        server.start()
    except FileNotFoundError as exc:
        fail(str(exc), ExitCode.FAILED, fix="make system-deps   # PostgreSQL's server binaries, with apt-get")
    except RuntimeError as exc:
        fail(
            f"{exc}"[:400],
            ExitCode.FAILED,
            fix=f"stop the other server of {data_dir}, or: ecomind local-postgres --data-dir ANOTHER_FOLDER",
        )
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        _print_exports(server, port)
        sys.stdout.flush()  # in a pipe too: whoever waits for these lines gets them now
        while server.serves_port():
            time.sleep(1)
        fail(f"the PostgreSQL on 127.0.0.1:{port} stopped", ExitCode.FAILED, fix=f"see {server.root / 'server.log'}")
    finally:
        server.stop()
