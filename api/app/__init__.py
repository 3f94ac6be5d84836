"""EcoMind API: the service, its secret layer and the ``ecomind`` command line.

The packages are floors; a module imports only from floors below its own (a test reads
every import and fails on one that runs back up, on a sibling at the same floor, or on a
cycle: ``tests/test_layering.py``)::

    0  telemetry   the catalog of signals (metrics, alarms, log events): names and meaning
    1  secrets/    references, backends, the cache, the policy, redaction, the error tree
    2  settings/   what the API reads from its environment (Settings) and its knobs (Tuning)
    3  data/       PostgreSQL: the rotation-aware engine, tables, failures, roles, local servers
    3  observe/    /metrics and the logs
    4  auth/       tokens, password hashing and policy, login limits, logout, live users
    5  api/        the HTTP layer: dependencies, routes, errors, the server's connection limits
    5  rotation/   the rotation handlers (Lambda) and the protocol they follow
    5  prefetch    secrets read before uvicorn forks its workers
    6  cli/        the ``ecomind`` command line
    7  main        the application factory (create_app)
    8  asgi        the ASGI entry point uvicorn serves (``app.asgi:app``)
"""

__all__: list[str] = []
