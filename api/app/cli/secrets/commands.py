"""The ``ecomind secrets`` command group: each command's name and module, in the order help lists them."""

from __future__ import annotations

import typer

from app.cli.secrets import listing, planner, rotate, values

__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode=None,
    help="Provision, list, describe, read, write and rotate an environment's secrets.",
    no_args_is_help=True,
)

app.command("provision")(planner.provision)
app.command("list")(listing.list_)
app.command("describe")(listing.describe)
app.command("history")(listing.history)
app.command("get")(values.get)
app.command("set")(values.set_)
app.command("restore")(values.restore)
app.command("rotate")(rotate.rotate)
