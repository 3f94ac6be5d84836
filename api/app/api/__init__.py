"""The HTTP layer: the routes, their dependencies, the error answers and the server's limits.

Owns what a request meets: ``deps`` (the services a route gets: a database session, the
caller's token), ``routes/`` (one module per resource), ``errors`` (one answer shape for every
failure, never a secret) and ``serving`` (the uvicorn protocol that bounds connections and
header time).

May import: authentication, data, observability, configuration, the secret layer and the
signal catalog.
"""

__all__: list[str] = []
