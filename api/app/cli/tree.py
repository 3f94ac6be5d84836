"""The ``ecomind`` command tree (typer), built only when a command other than ``run`` is asked for.

::

    ecomind init                       cli/init_cmd.py
    ecomind config check|show          cli/config_cmd.py
    ecomind secrets provision|list|describe|history|get|set|restore|rotate
                                       cli/secrets/ (commands.py names them, a module per job)
    ecomind run -- CMD                 cli/run_cmd.py (argparse; cli/main.py calls it directly)
    ecomind export                     cli/export_cmd.py
    ecomind doctor                     cli/doctor/ (command.py; a module per check family)
    ecomind migrate, users create-admin|unlock
                                       cli/db_cmd.py
    ecomind dev                        cli/dev_cmd.py
    ecomind local-postgres             cli/postgres_cmd.py
"""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli import config_cmd, db_cmd, dev_cmd, export_cmd, init_cmd, postgres_cmd, run_cmd
from app.cli.doctor import command as doctor_command
from app.cli.output import data
from app.cli.secrets import commands as secrets_commands

__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode=None,
    name="ecomind",
    help="EcoMind operator CLI: local setup, configuration checks, secrets, diagnosis.\n\n"
    "Exit codes: docs/troubleshooting.md. Example: ecomind init && ecomind config check",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        data(f"ecomind {version('ecomind-api')}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """EcoMind operator CLI: local setup, configuration checks, secrets, diagnosis."""


_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _run(ctx: typer.Context) -> None:
    # Listed here for `ecomind --help` and completion; cli/main.py sends `ecomind run ...` to
    # run_cmd.main before this tree is built, so this is reached only through a test's own call.
    raise typer.Exit(run_cmd.main(list(ctx.args)))


app.command("init")(init_cmd.init)
app.add_typer(config_cmd.app, name="config")
app.add_typer(secrets_commands.app, name="secrets")
app.add_typer(db_cmd.users, name="users")
app.command("migrate", context_settings=_PASS_THROUGH)(db_cmd.migrate)
app.command("dev")(dev_cmd.dev)
app.command("local-postgres")(postgres_cmd.local_postgres)
app.command(
    "run",
    help=run_cmd.HELP,
    context_settings={**_PASS_THROUGH, "help_option_names": []},
    add_help_option=False,
)(_run)
app.command("export")(export_cmd.export)
app.command("doctor")(doctor_command.doctor)
