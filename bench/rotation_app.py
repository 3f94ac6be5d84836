"""The API as rotation_under_load.py serves it: a pool that recycles every second,
so new connections (with the credentials of the moment) open all through a rotation."""

from fastapi import FastAPI

from app.main import create_app


def app_factory() -> FastAPI:
    return create_app(engine_options={"pool_recycle": 1.0, "pool_size": 20, "max_overflow": 20})


if __import__("os").environ.get("BENCH_TRACE"):
    import logging

    logging.basicConfig(level=logging.INFO, format="%(created).3f %(threadName)s %(name)s %(message)s")
