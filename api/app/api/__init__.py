"""The HTTP layer: dependencies and routes only."""

__all__: list[str] = []
