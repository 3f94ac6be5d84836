"""The ``ecomind`` command line: one module per command group (a package for ``secrets``, ``doctor``).

Owns what an operator types: ``config``, ``secrets``, ``doctor``, ``run``, ``export``,
``migrate``, ``dev``, ``local-postgres``; the exit codes and the printing of fixes
(``output``, ``fixes``); what the shell says of the environment (``shell``). Command
modules import their heavy dependencies inside the command, so ``ecomind --help`` stays fast.

May import: every floor below it (the application factory and the ASGI entry point are
above it: ``ecomind dev`` serves ``app.asgi:app`` by name).
"""

from app.cli.main import main

__all__ = ["main"]
