"""Authentication: who is calling, and whether they may try again.

Owns JWT signing keys that rotate without logging anyone out (``tokens``), password
hashing on its own bounded pool (``hashing``), the password policy (``passwords``), email
normalisation (``emails``), login limits (``limits``), logout (``revocations``) and the cache
of users who still exist (``users``).

May import: data, observability, configuration, the secret layer, the signal catalog.
"""

__all__: list[str] = []
