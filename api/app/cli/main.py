"""Entry point of the ``ecomind`` console script."""

from __future__ import annotations

import logging
import os
import sys

import typer

from ..secrets import redact
from . import config_cmd, db_cmd, doctor_cmd, init_cmd, run_cmd, secrets_cmd
from . import inventory as _inventory  # noqa: F401 - registers secrets provision/list/describe
from .output import err

app = typer.Typer(
    name="ecomind",
    help="EcoMind operator CLI: local setup, configuration checks and secrets.\n\n"
    "Example: ecomind init && ecomind config check",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("init")(init_cmd.init)
app.add_typer(config_cmd.app, name="config")
app.add_typer(secrets_cmd.app, name="secrets")
app.add_typer(db_cmd.users, name="users")
app.command("migrate", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(db_cmd.migrate)
app.command("dev")(db_cmd.dev)
app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(run_cmd.run)
app.command("doctor")(doctor_cmd.doctor)


def main() -> None:
    redact.install()
    logging.basicConfig(
        level=os.environ.get("ECOMIND_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback, no value
        err.print(f"error: unexpected {type(exc).__name__}: {exc}", markup=False)
        err.print("set ECOMIND_DEBUG=1 for the traceback", markup=False)
        if os.environ.get("ECOMIND_DEBUG"):
            import traceback

            err.print(traceback.format_exc(), markup=False)
        sys.exit(1)
