"""Secrets Manager rotation handlers (Lambda entry points). No FastAPI import here."""

__all__: list[str] = []
