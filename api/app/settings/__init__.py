"""Configuration: what the API reads from its environment, and how.

Owns the :class:`~app.settings.loading.Settings` the API runs with in ``loading``: a plain
model of the environment model's variables, read, resolved and checked by the secret layer
(which knows where each value came from), and the operational knobs (``ECOMIND_*``: pool
sizes, timeouts, limits) in ``knobs``: a pydantic-settings model whose fields are the knobs.

May import: the secret layer (``app.secrets``) and the signal catalog (``app.telemetry``).
"""

__all__: list[str] = []
