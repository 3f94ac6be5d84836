"""The API as it is served: ``uvicorn app.asgi:app`` (the Dockerfile, ``ecomind dev``).

Before anything else, a child process starts resolving the secrets (app/prefetch.py)
while this process imports the web stack; the lifespan then loads the settings from
what the child fetched. ``app.main:app`` is the same API without the head start.
"""

from __future__ import annotations

import threading
from pathlib import Path

from app import prefetch

ENV_FILE = Path(".env")
_prefetch = prefetch.start(ENV_FILE)

from app.main import create_app, served_tuning  # noqa: E402 - imported while the child resolves, on purpose
from app.settings.loading import Settings, load_settings  # noqa: E402
from app.telemetry import SM_CALLS  # noqa: E402

__all__ = ["app"]


def _load() -> Settings:
    if _prefetch is None:
        return load_settings(env_file=ENV_FILE)
    settings = load_settings(env_file=ENV_FILE, prefetched=_prefetch.versions())
    for labels, count in _prefetch.calls:
        settings.stats.inc(SM_CALLS, *labels, by=count)  # the child's calls are this process's
    return settings


# Seconds after the API is ready before the refresh client is built. Built at once, its
# import (botocore) competed for the interpreter with the first requests and delayed the
# first /ready 200 by ~50 ms (make bench, figure 8).
WARM_DELAY_SECONDS = 2.0


def _ready(settings: Settings) -> None:
    # The AWS client the refreshes will use, built soon in the background (botocore's
    # import), rather than by the first refresh or a refused database password.
    warm = threading.Timer(WARM_DELAY_SECONDS, settings.prepare_refresh)
    warm.name, warm.daemon = "secrets-warm", True
    warm.start()


app = create_app(load=_load, on_ready=_ready, tuning=served_tuning())
