"""Data: PostgreSQL as the API uses it.

Owns the rotation-aware engine (``engine``: it follows a rotated password without a
restart), the tables (``tables``), the one reading of a failed connection (``failures``), the
one place a role's password is written (``roles``), the check of stored text (``text``) and
the local PostgreSQL and Redis servers of a developer's machine (``local``).

May import: the secret layer, configuration and the signal catalog.
"""

__all__: list[str] = []
