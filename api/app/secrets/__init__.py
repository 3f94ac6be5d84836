"""The secret layer: references, backends, cache, policy, redaction and errors.

Nothing here imports FastAPI or SQLAlchemy; :mod:`app.settings.loading` builds on it. Import
the modules themselves (``app.secrets.store``, ``app.secrets.environment``...): this
package re-exports nothing, so importing one module costs only what it needs.

::

    environment.py  the model of an environment: names, periods, roles, policy facts
    sources.py      reading env and .env (collect)
    refs.py         the reference grammar
    store.py        the cache; base.py, aws.py, files.py its backends
    aws_errors.py   what Secrets Manager's errors mean (the one reader of botocore's codes)
    failover.py     the regions asked in turn for what the previous one could not serve
    clients.py      Secrets Manager clients: timeouts, retries, the endpoint override checked
    emulator.py     what exists only because an emulator answers unlike AWS (used there only)
    live.py         LiveSecret, the handle that follows rotation
    policy.py       the policy applied, one check per variable
    urls.py         database secret shapes and URLs
    redact.py       scrubbing of logs and output
    errors.py       the error tree

May import: the signal catalog (``app.telemetry``) only.
"""

__all__: list[str] = []
