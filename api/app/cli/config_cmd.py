"""``ecomind config check|show``: load, validate and display the configuration, masked."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..secrets.errors import Problem, SettingsError
from ..secrets.policy import ENVIRONMENTS
from ..settings import VARIABLES, Settings, load_settings
from .output import err, mask, out, print_json

__all__ = ["app"]

app = typer.Typer(help="Check and show the configuration (values masked).", no_args_is_help=True)

EnvironmentName = Enum("EnvironmentName", {name: name for name in ENVIRONMENTS}, type=str)  # type: ignore[misc]
EnvironmentOpt = Annotated[
    EnvironmentName | None,
    typer.Option("--environment", "-e", help="Overrides ENVIRONMENT.", case_sensitive=False),
]
EnvFileOpt = Annotated[Path, typer.Option("--env-file", help=".env file read in development.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _rows(settings: Settings | None, sources: dict[str, str], problems: list[Problem]) -> list[dict[str, Any]]:
    rows = []
    for name in VARIABLES:
        mine = [p for p in problems if p.variable == name]
        status = "error" if any(p.severity == "error" for p in mine) else ("warning" if mine else "ok")
        value: str | None = None
        if settings is not None:
            raw = getattr(settings, name.lower())
            value = raw.get_secret_value() if hasattr(raw, "get_secret_value") else (None if raw is None else str(raw))
        rows.append(
            {
                "variable": name,
                "source": sources.get(name, "unset"),
                "status": status,
                "value": mask(name, value) if settings is not None else None,
            }
        )
    return rows


def _problem_dict(p: Problem) -> dict[str, str]:
    return {"variable": p.variable, "source": p.source, "severity": p.severity, "message": p.message, "fix": p.fix}


def _load(environment: EnvironmentName | None, env_file: Path) -> tuple[Settings | None, dict[str, str], list[Problem]]:
    try:
        settings = load_settings(environment=environment.value if environment else None, env_file=env_file)
    except SettingsError as exc:
        return None, exc.sources, exc.problems
    sources = {name: origin.describe() for name, origin in settings.origins.items()}
    return settings, sources, settings.warnings


def _report(settings: Settings | None, sources: dict[str, str], problems: list[Problem], as_json: bool) -> None:
    rows = _rows(settings, sources, problems)
    if as_json:
        print_json(
            {
                "valid": settings is not None,
                "environment": settings.environment if settings else None,
                "variables": rows,
                "problems": [_problem_dict(p) for p in problems],
            }
        )
        return
    table = Table(title="EcoMind configuration" + (f" ({settings.environment})" if settings else ""))
    for column in ("variable", "source", "status", "value"):
        table.add_column(column, overflow="fold")
    colour = {"ok": "green", "warning": "yellow", "error": "red"}
    for row in rows:
        table.add_row(
            row["variable"], row["source"], f"[{colour[row['status']]}]{row['status']}[/]", row["value"] or "-"
        )
    out.print(table)
    for p in problems:
        target = err if p.severity == "error" else out
        target.print(f"[{colour[p.severity]}]{p.severity}[/] {p.variable} (from {p.source}): {p.message}")
        target.print(f"  fix: {p.fix}", markup=False)


@app.command("check")
def check(environment: EnvironmentOpt = None, as_json: JsonOpt = False, env_file: EnvFileOpt = Path(".env")) -> None:
    """Load and validate the configuration; exit 0 when valid, 1 when not.

    Every problem is listed at once, each with the variable, where its value came
    from and a fix. Values are masked; references are shown, never what they hold.

    Example: ENVIRONMENT=production AWS_REGION=us-east-1 ecomind config check --json
    """
    settings, sources, problems = _load(environment, env_file)
    try:
        _report(settings, sources, problems, as_json)
        if settings is None:
            if not as_json:
                err.print(f"configuration invalid: {sum(p.severity == 'error' for p in problems)} error(s)")
            raise typer.Exit(1)
        if not as_json:
            out.print("[green]configuration valid[/]")
    finally:
        if settings is not None:
            settings.close()


@app.command("show")
def show(environment: EnvironmentOpt = None, as_json: JsonOpt = False, env_file: EnvFileOpt = Path(".env")) -> None:
    """Print the resolved configuration, masked, with each value's source.

    Example: ecomind config show --json
    """
    settings, sources, problems = _load(environment, env_file)
    try:
        if settings is None:
            _report(settings, sources, problems, as_json)
            raise typer.Exit(1)
        rows = _rows(settings, sources, [])
        if as_json:
            print_json({row["variable"]: {"value": row["value"], "source": row["source"]} for row in rows})
            return
        for row in rows:
            out.print(f"{row['variable']}={row['value']}  [dim]# {row['source']}[/]")
    finally:
        if settings is not None:
            settings.close()
