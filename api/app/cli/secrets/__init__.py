"""``ecomind secrets ...``: an environment's secrets in Secrets Manager, one module per job.

``provision``, ``list``, ``describe``, ``history`` never print a value; ``get`` prints
the one value asked for; ``set`` reads a new value from stdin (never from an
argument, which ``ps`` and shell history would keep); ``rotate`` runs a rotation;
``restore`` cancels a scheduled deletion. Every name comes from the model of the
environment (:mod:`app.secrets.environment`), with ``SECRETS_PREFIX`` when set::

    commands.py   the ``secrets`` command group: each command's name, in the order help lists them
    planner.py    provision: the plan of calls that creates or updates the secrets
    listing.py    list, describe, history
    values.py     get, set, restore
    rotate.py     rotate (RotateSecret, or the four steps here with --local)
    calls.py      the client, its errors, the secret asked for (shared, the doctor's too)
    kinds.py      which environment and which secret a name or its metadata is (shared)

May import: the secret layer (app.secrets), the rotation handlers (app.rotation, when a
command runs) and the CLI's shared modules (app.cli.output, options, fixes).
"""

__all__: list[str] = []
