"""Observability: the signals of ``app.telemetry`` made visible.

Owns the Prometheus ``/metrics`` registry and its server (``metrics``) and the structured,
secret-scrubbed logs (``logs``). What each signal means lives in ``app.telemetry``, the
ground floor every layer may import; this package publishes them.

May import: configuration, the secret layer, the signal catalog.
"""

__all__: list[str] = []
