"""``ecomind doctor``: the command, and the order its check families run in.

The configuration checks first (:mod:`app.cli.doctor.configuration`), then AWS access
(:mod:`~app.cli.doctor.access`), connectivity (:mod:`~app.cli.doctor.connectivity`) and
rotation health (:mod:`~app.cli.doctor.rotation`); :mod:`~app.cli.doctor.report` prints them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from app.cli.doctor.access import AccessChecks
from app.cli.doctor.base import Check
from app.cli.doctor.configuration import ConfigurationChecks
from app.cli.doctor.connectivity import ConnectivityChecks
from app.cli.doctor.report import report
from app.cli.doctor.rotation import RotationChecks
from app.cli.options import EnvFileOpt, EnvironmentOpt, JsonOpt, value_of
from app.cli.output import ExitCode, fail
from app.secrets.environment import SECRET_VARIABLES
from app.secrets.errors import SettingsError
from app.secrets.refs import AwsRef

__all__ = ["doctor"]


class Doctor(ConfigurationChecks, AccessChecks, ConnectivityChecks, RotationChecks):
    """Every check family, in the order an operator would look."""

    def run(self) -> list[Check]:
        c = self.insp.collected
        aws_refs = {v: r for v, r in c.references.items() if isinstance(r, AwsRef)}
        self.configuration()
        if aws_refs:
            self.credentials()
        for variable, ref in c.references.items():
            self.readable(variable, ref)
        if "DATABASE_URL" in self.secrets:
            self.database()
        if "REDIS_URL" in self.secrets:
            self.redis()
        if aws_refs and self.m.deployed:
            for variable, ref in aws_refs.items():
                if variable in self.insp.resolved:
                    self.rotation(variable, ref)
                else:
                    self.unread(variable, ref)
        return self.checks


def doctor(
    environment: EnvironmentOpt = None,
    as_json: JsonOpt = False,
    env_file: EnvFileOpt = Path(".env"),
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the database.")] = 3.0,
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", help="Judge rotation schedules and pending versions as of this date (default: now)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Check only this secret variable (repeatable): what a role reading less needs."),
    ] = None,
) -> None:
    """Diagnose the configuration the way an operator would, each failure with its fix.

    First the checks the API runs at start (the same code: every value against the
    environment's policy), then: AWS credentials and region; each secret readable (a
    denial prints the exact least-privilege policy; a missing secret is looked for in
    the other regions and among similar names); the database (DNS, TCP, login, SSL);
    rotation (on, within schedule) and no rotation left unfinished (a version AWSPENDING
    without AWSCURRENT for longer than the secret's rotation window). A check that could
    not run says "not checked".
    Exit 0 when all pass, 1 when one failed, 8 when none failed but some were not checked.

    Example: ENVIRONMENT=production AWS_REGION=us-east-1 ecomind doctor
    """
    secrets = SECRET_VARIABLES
    if only:
        unknown = sorted(set(only) - set(SECRET_VARIABLES))
        if unknown:
            fail(f"--only: not a secret variable: {', '.join(unknown)}", ExitCode.USAGE)
        secrets = tuple(v for v in SECRET_VARIABLES if v in only)
    from app.settings.loading import inspect_settings  # pydantic, boto3: only when the doctor runs

    try:
        insp = inspect_settings(environment=value_of(environment), env_file=env_file, secrets=secrets)
    except SettingsError as exc:
        checks = [Check(f"configuration: {p.variable}", "fail", p.message, p.fix) for p in exc.problems]
    else:
        when = (as_of.replace(tzinfo=as_of.tzinfo or UTC)) if as_of else datetime.now(UTC)
        try:
            checks = Doctor(insp, timeout=timeout, as_of=when, secrets=secrets).run()
        finally:
            insp.store.close()
    raise typer.Exit(int(report(checks, as_json=as_json)))
