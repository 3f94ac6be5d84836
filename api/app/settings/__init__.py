"""Configuration: what the API reads from its environment, and how.

Owns the :class:`~app.settings.loading.Settings` the API runs with (its secret variables
resolved by the secret layer, checked by the policy of the environment) in ``loading``, and
the operational knobs (``ECOMIND_*``: pool sizes, timeouts, limits) in ``knobs``.

May import: the secret layer (``app.secrets``) and the signal catalog (``app.telemetry``).
"""

__all__: list[str] = []
