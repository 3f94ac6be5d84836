"""The doctor's connectivity checks: the database (DNS, TCP, login, SSL) and Redis (PING)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

from app.cli.fixes import by_operator, password_reset_fix, secrets_command
from app.cli.postgres_cmd import ssl_fix
from app.secrets.refs import AwsRef

if TYPE_CHECKING:
    pass
from app.cli.doctor.base import DoctorBase

__all__ = ["ConnectivityChecks"]


class ConnectivityChecks(DoctorBase):
    """The database and Redis, as the API would reach them."""

    def database(self) -> None:
        """DNS, then TCP, then a login with SSL as the environment requires: the first that fails is said."""
        url = self.insp.values.get("DATABASE_URL")
        if url is None or "DATABASE_URL" in self.insp.invalid:
            why = "is invalid" if url is not None else "could not be read"
            self.add("database", "not_checked", f"DATABASE_URL {why} (see above): no host to try")
            return
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "localhost", parts.port or 5432
        except ValueError:
            self.add("database", "not_checked", "DATABASE_URL does not parse (see above)")
            return
        if self.database_reached(host, port) and self.database_login(url, parts, host, port):
            self.add("database reachable", "ok", f"{host}:{port}, login and SSL as {self.m.name} requires")

    def database_reached(self, host: str, port: int) -> bool:
        """The host resolves and its port answers (a check failed when not)."""
        source = self.insp.collected.source("DATABASE_URL")
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            self.add(
                "database host",
                "fail",
                f"{host} does not resolve (DNS; in a VPC, an RDS endpoint resolves only inside it)",
                f"ecomind config show   # the host of DATABASE_URL, from {source}",
            )
            return False
        deployed = self.m.deployed
        ingress = (
            f"aws ec2 authorize-security-group-ingress --group-id DATABASE_SG --protocol tcp --port {port} "
            "--source-group TASKS_SG"
        )
        try:
            with socket.create_connection((host, port), timeout=self.timeout):
                pass
        except TimeoutError:
            self.add(
                "database reachable",
                "fail",
                f"{host}:{port} did not answer within {self.timeout:g} s",
                ingress if deployed else f"is a firewall dropping {host}:{port}?",
            )
            return False
        except OSError as exc:
            self.add(
                "database reachable",
                "fail",
                f"{host}:{port}: {exc.strerror or type(exc).__name__}",
                "make run   # starts a project-local PostgreSQL on the port of .env"
                if not deployed
                else f"check the endpoint and port in DATABASE_URL (from {source})",
            )
            return False
        return True

    def database_login(self, url: str, parts: SplitResult, host: str, port: int) -> bool:
        """A login as the API makes it (a check failed, with the fix by kind of failure, when refused)."""
        import psycopg

        from app.data.engine import connect_args
        from app.data.failures import classify

        try:
            psycopg.connect(**connect_args(url), connect_timeout=int(max(1, self.timeout))).close()
        except psycopg.Error as exc:
            failure = classify(exc)
            self.add("database login", "fail", f"{host}:{port}: {failure.summary}", self.login_fix(failure.kind, parts))
            return False
        return True

    def login_fix(self, kind: str, parts: SplitResult) -> str:
        host, port = parts.hostname or "localhost", parts.port or 5432
        if kind == "auth" and self.m.deployed:
            # The stored password is not the role's.
            ref = self.insp.collected.references.get("DATABASE_URL")
            secret = ref.secret_id if isinstance(ref, AwsRef) else self.m.secret_name("database")
            region = (ref.region if isinstance(ref, AwsRef) else None) or self.region
            return password_reset_fix(self.m, secret, region, f"{host}:{port}")
        if kind == "auth":
            source = self.insp.collected.source("DATABASE_URL")
            return (
                f"the password in DATABASE_URL (from {source}) is not the role's: if another PostgreSQL "
                f"listens on {port}, point .env at a free port and run make run again"
            )
        if kind == "ssl":
            return ssl_fix(host, self.m.name)
        if kind == "no_database":
            return f"create it: CREATE DATABASE {parts.path.lstrip('/') or 'NAME'} OWNER {parts.username or 'USER'};"
        return "docs/troubleshooting.md"

    def redis_password_fix(self) -> str:
        """Where REDIS_URL's password is set: the secret it references, else (development) a .env
        whose REDIS_URL reaches the project's own Redis, which takes none."""
        ref = self.insp.collected.references.get("REDIS_URL")
        value = "VALUE: rediss://:PASSWORD@HOST:PORT/0, PASSWORD the AUTH token the server takes"
        if isinstance(ref, AwsRef):
            return "printf '%s' \"$VALUE\" | " + secrets_command(
                f"set {ref.secret_id}", ref.region or self.region, note=f"{value}; {by_operator(self.m)}"
            )
        if self.m.deployed:
            source = self.insp.collected.source("REDIS_URL")
            return (
                f"export REDIS_URL=aws-secretsmanager:NAME   # in place of REDIS_URL (from {source}): a secret "
                f"holding the URL with its password ({value.partition(': ')[2]}), out of the task definition"
            )
        return (
            "ecomind init --force   # .env anew: REDIS_URL where make run starts the project's own Redis "
            "(no password; a free port when another Redis holds the one of .env)"
        )

    def redis(self) -> None:
        url = self.insp.values.get("REDIS_URL")
        if url is None or "REDIS_URL" in self.insp.invalid:
            return
        import redis

        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=self.timeout, socket_timeout=self.timeout)
            client.ping()
            client.close()
        except redis.AuthenticationError as exc:
            needs_one = "required" in str(exc).lower()  # NOAUTH; else WRONGPASS
            detail = (
                "Redis needs a password and REDIS_URL has none (NOAUTH)"
                if needs_one
                else "Redis refused the password in REDIS_URL (WRONGPASS)"
            )
            self.add("redis", "fail", f"{detail}; the API's /ready answers 503", self.redis_password_fix())
        except (redis.RedisError, OSError, ValueError) as exc:
            where = urlsplit(url).netloc.rpartition("@")[2]
            fix = (
                "make run   # starts the project's Redis where .env points"
                if not self.m.deployed
                else ("check the ElastiCache endpoint in REDIS_URL and that its security group admits the tasks")
            )
            self.add("redis", "fail", f"{where}: {type(exc).__name__} (the API's /ready answers 503)", fix)
        else:
            self.add("redis", "ok", "answers PING")
            self.redis_eviction(url)

    def redis_eviction(self, url: str) -> None:
        """Logout lives in Redis: a policy that evicts keys could bring a logged-out token back."""
        import redis

        from app.auth.revocations import eviction_check

        client = redis.Redis.from_url(url, socket_connect_timeout=self.timeout, socket_timeout=self.timeout)
        try:
            found = eviction_check(client, url)
        finally:
            client.close()
        self.add("redis eviction", found.status, found.detail, found.fix)
