"""The API as api_overhead.py serves it: create_app() with its defaults."""

from fastapi import FastAPI

from app.main import create_app


def app_factory() -> FastAPI:
    return create_app()
