"""Routes, one module per resource; each exports its ``router``."""

__all__: list[str] = []
