"""EcoMind API: the service and its secret layer."""

__all__: list[str] = []
