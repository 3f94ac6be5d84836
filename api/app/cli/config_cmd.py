"""``ecomind config check|show``: the inspection ``load_settings`` runs, shown with values masked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from app.cli.options import EnvFileOpt, EnvironmentOpt, JsonOpt, value_of
from app.cli.output import ExitCode, Verbatim, data, exit_code, mask, print_json, problem_count, say, table
from app.secrets import redact
from app.secrets.environment import VARIABLES
from app.secrets.errors import Problem, SettingsError

if TYPE_CHECKING:
    from app.settings.loading import Inspection

__all__ = ["app"]

app = typer.Typer(rich_markup_mode=None, help="Check and show the configuration (values masked).", no_args_is_help=True)


def _rows(insp: Inspection) -> list[dict[str, Any]]:
    c = insp.collected
    rows = []
    for variable in VARIABLES:
        name = variable.name
        mine = [p for p in insp.problems if p.variable == name]
        status = "error" if any(p.severity == "error" for p in mine) else ("warning" if mine else "ok")
        source = c.source(name)
        if variable.secret:
            shown = mask(name, insp.values.get(name)) if name in insp.values else "-"
        elif name == "ENVIRONMENT":
            shown = Verbatim(c.model.name)
        elif name == "SECRETS_PREFIX":
            shown = Verbatim(c.model.prefix)
        elif name in c.raw:
            shown = Verbatim(c.raw[name])
        elif variable.default is not None:
            shown, source = Verbatim(variable.default), "default"
        else:
            shown = "-"
        row: dict[str, Any] = {"variable": name, "source": Verbatim(source), "status": status, "value": shown}
        resolved = insp.resolved.get(name)
        if resolved is not None:
            row["version"] = Verbatim(resolved.version_id or "")
            if resolved.region:
                row["region"] = Verbatim(resolved.region)
        rows.append(row)
    return rows


def _problem(p: Problem) -> dict[str, Any]:
    return {
        "variable": p.variable,
        "source": Verbatim(p.source),
        "severity": p.severity,
        "message": p.message,
        "fix": Verbatim(p.fix),
    }


def _print_problems(problems: list[Problem]) -> None:
    for p in problems:
        is_error = p.severity == "error"
        # The source is data (a reference's name): verbatim. The message is scrubbed.
        data(
            f"{p.severity} {p.variable} (from {p.source}): {redact.scrub(p.message)}",
            err=is_error,
            style="red" if is_error else "yellow",
        )
        data(f"  fix: {p.fix}", err=is_error)


def _inspect(environment: Any, env_file: Path, as_json: bool) -> Inspection:
    from app.settings.loading import inspect_settings  # pydantic, boto3: only when a command runs

    try:
        return inspect_settings(environment=value_of(environment), env_file=env_file)
    except SettingsError as exc:  # an unknown ENVIRONMENT: nothing else can be judged
        if as_json:
            print_json(
                {"valid": False, "environment": None, "variables": [], "problems": [_problem(p) for p in exc.problems]}
            )
        else:
            _print_problems(exc.problems)
        raise typer.Exit(int(ExitCode.CONFIG)) from None


def _exit(insp: Inspection) -> None:
    if not insp.ok:
        first = next((p for p in insp.problems if p.severity == "error"), None)
        raise typer.Exit(int(exit_code(first.kind) if first else ExitCode.CONFIG))


@app.command("check")
def check(environment: EnvironmentOpt = None, as_json: JsonOpt = False, env_file: EnvFileOpt = Path(".env")) -> None:
    """Load and validate the configuration as the API does; exit 0 when valid.

    Every problem is listed at once, each with the variable, where its value came
    from and a fix. Values are masked; references are shown, never what they hold.
    The exit code names the first error's kind (docs/troubleshooting.md, "Exit codes").

    Example: ENVIRONMENT=production AWS_REGION=us-east-1 ecomind config check --json
    """
    insp = _inspect(environment, env_file, as_json)
    try:
        rows = _rows(insp)
        if as_json:
            print_json(
                {
                    "valid": insp.ok,
                    "environment": insp.model.name,
                    "variables": rows,
                    "problems": [_problem(p) for p in insp.problems],
                }
            )
        else:
            table(
                f"EcoMind configuration ({insp.model.name})",
                ("variable", "source", "status", "value", "region"),
                ((r["variable"], r["source"], r["status"], r["value"], r.get("region", "")) for r in rows),
            )
            _print_problems(insp.problems)
            if insp.ok:
                say("configuration valid", style="green")
            else:
                say(f"configuration invalid: {problem_count(insp.problems)}", err=True)
        _exit(insp)
    finally:
        insp.store.close()


@app.command("show")
def show(environment: EnvironmentOpt = None, as_json: JsonOpt = False, env_file: EnvFileOpt = Path(".env")) -> None:
    """Print the configuration, masked, one NAME=value line per variable with its source.

    Example: ecomind config show --json
    """
    insp = _inspect(environment, env_file, as_json)
    try:
        rows = _rows(insp)
        if as_json:
            print_json({r["variable"]: {"value": r["value"], "source": r["source"]} for r in rows})
        else:
            for r in rows:
                data(f"{r['variable']}={r['value']}  # {r['source']}")
            _print_problems(insp.problems)
        _exit(insp)
    finally:
        insp.store.close()
