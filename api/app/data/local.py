"""A project-local PostgreSQL and Redis for `ecomind dev` and the tests.

PostgreSQL comes from the machine's server binaries (``pg_config --bindir`` or
Debian's ``/usr/lib/postgresql/<v>/bin``), initialised with
``--auth=scram-sha-256`` so passwords are really checked. As root, the server runs
as the ``postgres`` user through ``runuser``. Development tooling only: the API
never imports this module.
"""

from __future__ import annotations

import glob
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from app.data.failures import classify
from app.data.roles import role_exists, set_role_password

__all__ = [
    "LocalPostgres",
    "LocalRedis",
    "RoleHasAnotherPassword",
    "ensure_role_and_database",
    "free_port",
    "port_open",
    "postgres_bindir",
    "terminate",
    "wait_port",
]


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM, a bounded wait, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")
        time.sleep(0.05)


def postgres_bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise FileNotFoundError("PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql)")


# Where the server's data goes when, as root, the folder asked for is out of the postgres
# user's reach (a clone in /root or in a private mktemp folder): its home on Debian.
REACHABLE_ROOT = Path("/var/lib/postgresql/ecomind")


class LocalPostgres:
    """A PostgreSQL cluster in ``data_dir``, listening on 127.0.0.1:``port`` only.

    As root the server runs as ``postgres``; if that user cannot reach ``data_dir``
    the data goes under :data:`REACHABLE_ROOT` instead (``relocated`` says so). With
    ``ssl=True`` the server gets a self-signed certificate (``sslmode=require`` works;
    ``verify-*`` would not, by design of a throwaway certificate).
    """

    def __init__(self, data_dir: Path, port: int, *, ssl: bool = False) -> None:
        self.asked = data_dir.resolve()
        self.port = port
        self.ssl = ssl
        self.bindir = postgres_bindir()
        self._as_postgres = os.geteuid() == 0
        self.root = self.asked
        if self._as_postgres and not _postgres_reaches(self.asked):
            digest = hashlib.sha256(str(self.asked).encode()).hexdigest()[:12]
            self.root = REACHABLE_ROOT / digest
        self.data = self.root / "data"
        self.password_file = self.root / "superuser-password"

    @property
    def relocated(self) -> bool:
        return self.root != self.asked

    @property
    def superuser_password(self) -> str:
        return self.password_file.read_text().strip()

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname} password={self.superuser_password}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_postgres and self.relocated:
            shutil.chown(REACHABLE_ROOT, "postgres")
        if not self.password_file.exists():
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(24))
        pwfile = self.root / ".pwfile"
        pwfile.write_text(self.superuser_password)
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(pwfile, "postgres")
            os.chmod(self.root, 0o700)
        try:
            result = self._run(
                "initdb",
                "-D",
                str(self.data),
                "--auth=scram-sha-256",
                "--username=postgres",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.strip()[-500:]}")

    def start(self) -> LocalPostgres:
        if not self.initialised():
            self.init()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        options += " -c max_connections=200"
        if self.ssl:
            options += " " + self._certificate()
        else:
            options += " -c ssl=off"
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start"
        )
        if result.returncode != 0:
            log = (self.root / "server.log").read_text()[-800:] if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()} {log}")
        wait_port("127.0.0.1", self.port)
        return self

    def serves_port(self) -> bool:
        """Whether this cluster is the server listening on our port (its postmaster.pid says so)."""
        return self.running_port() == self.port

    def running_port(self) -> int | None:
        """The port this cluster's server listens on, whatever port we were given; None when it is not running."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return port

    def _certificate(self) -> str:
        key, cert = self.data / "server.key", self.data / "server.crt"
        if not cert.exists():
            request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"]
            subprocess.run(
                [*request, "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                capture_output=True,
                check=True,
            )
            os.chmod(key, 0o600)
            if self._as_postgres:
                shutil.chown(key, "postgres")
                shutil.chown(cert, "postgres")
        return f"-c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"

    def stop(self) -> None:
        if self.initialised():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


def _postgres_reaches(folder: Path) -> bool:
    """Whether the postgres user can walk down to ``folder``'s parent (``folder`` itself is
    made theirs by :meth:`LocalPostgres.init`)."""
    existing = folder.parent
    while not existing.exists():
        existing = existing.parent
    check = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(existing)], capture_output=True)
    return check.returncode == 0


class RoleHasAnotherPassword(RuntimeError):
    """The role exists and refuses the password asked for: whoever set it up (another copy of the
    API, an earlier .env) logs in with another one."""


def ensure_role_and_database(
    superuser_dsn: str, *, user: str, password: str, dbname: str, reset_password: bool = True
) -> bool:
    """Make ``user`` log in with ``password`` and own ``dbname``, creating what is missing.

    The password is tried first: a role that takes it is left as it is. A role that exists
    with another password is given this one only with ``reset_password`` (and True is
    returned); without, :class:`RoleHasAnotherPassword` is raised and nothing changes.
    """
    login = make_conninfo(superuser_dsn, user=user, password=password, dbname="postgres")
    try:
        psycopg.connect(login, connect_timeout=10).close()
        logs_in = True
    except psycopg.OperationalError as exc:
        if classify(exc).kind != "auth":
            raise
        logs_in = False
    reset = False
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        if not logs_in:
            reset = role_exists(conn, user)
            if reset and not reset_password:
                raise RoleHasAnotherPassword(f"the role {user} exists with another password")
            set_role_password(conn, user, password, create=True)
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(user)))
    return reset


class LocalRedis:
    """``redis-server`` on 127.0.0.1:``port``, nothing saved to disk."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: install it (Debian: apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
