"""Resolve the secrets while the web stack imports: the start of ``uvicorn app.asgi:app``.

Starting the API is mostly importing (FastAPI, SQLAlchemy, psycopg, redis) and then,
in the lifespan, resolving the secrets (botocore's import and client, one
``BatchGetSecretValue``). Both are CPU work, and a thread would only take turns with
the imports under the GIL. So :func:`start` forks a child first thing: the child runs
the same reads (the sources, then the store's batch calls: no copy of its own)
on another core while the parent imports, and hands the versions it fetched back
through a pipe. The lifespan then loads the settings from those versions (no AWS call),
and the parent imports botocore later, off the path to ``/ready``, for its refreshes.

Nothing is lost when the child fails, is slow or cannot run (no ``fork``): the parent
resolves as if it had never started, and its errors are the usual ones. The values
cross a pipe between a process and its own child, never a file, and are never logged.

Standard library only at import: it runs before the web stack loads.
"""

from __future__ import annotations

import json
import logging
import os
import select
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.secrets.base import SecretVersion

__all__ = ["start"]

log = logging.getLogger("app.prefetch")

WAIT_SECONDS = 60.0  # the longest the lifespan waits for the child before resolving itself


class Prefetch:
    """The child resolving the secrets, and what it sent back."""

    def __init__(self, pid: int, fd: int, env_file: Path) -> None:
        self.pid = pid
        self.env_file = env_file
        self._fd = fd
        self._result: dict[str, tuple[SecretVersion, float]] | None = None
        self._calls: list[tuple[list[str], int]] = []
        self._done = False

    def versions(self, wait: float = WAIT_SECONDS) -> dict[str, tuple[SecretVersion, float]]:
        """The versions the child fetched, by reference text; empty when it failed or took too long."""
        if not self._done:
            self._done = True
            self._collect(wait)
        return dict(self._result or {})

    @property
    def calls(self) -> list[tuple[list[str], int]]:
        """The child's Secrets Manager calls (labels of ecomind_secretsmanager_calls_total, count)."""
        return list(self._calls)

    def _collect(self, wait: float) -> None:
        from app.secrets.base import SecretVersion

        chunks: list[bytes] = []
        deadline = time.monotonic() + wait
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                    log.warning("secret prefetch took over %.0f s; resolving in the server process", wait)
                    os.kill(self.pid, 9)
                    return
                chunk = os.read(self._fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self._fd)
            _reap(self.pid)
        if not chunks:
            return  # the child failed: the lifespan resolves, and reports, as usual
        document: dict[str, Any] = json.loads(b"".join(chunks))
        self._result = {
            text: (
                SecretVersion(v["value"], v["version_id"], tuple(v["stages"]), v["region"], v["created"]),
                float(v["fetched_at"]),
            )
            for text, v in document["versions"].items()
        }
        self._calls = [(list(labels), int(count)) for labels, count in document["calls"]]


def start(
    env_file: Path = Path(".env"), *, environment: str | None = None, secrets: tuple[str, ...] | None = None
) -> Prefetch | None:
    """Fork the child that fetches the secrets the settings will read (the same ``environment``
    and ``secrets`` as :func:`app.settings.loading.load_settings` takes); None where there is no fork,
    or with ``ECOMIND_PREFETCH=off``: the caller then resolves as usual."""
    if not hasattr(os, "fork") or os.environ.get("ECOMIND_PREFETCH", "on") == "off":
        return None
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: fetch, write, and leave without running the parent's exit handlers
        status = 1
        try:
            os.close(read_fd)
            _log_like_the_parent()
            _write_all(write_fd, _fetch(os.environ, env_file, environment, secrets))
            status = 0
        except BaseException:  # noqa: BLE001, S110 - any failure: the parent resolves and reports it
            pass
        finally:
            os._exit(status)
    os.close(write_fd)
    return Prefetch(pid, read_fd, env_file)


def _log_like_the_parent() -> None:
    """What the child logs (a region that failed, a failover) is scrubbed, and JSON when the
    API's lines are (``ECOMIND_LOG_FORMAT=json``): it is written before the parent has set up
    anything, and the parent does not log it again."""
    from app.secrets import redact

    redact.install()
    if os.environ.get("ECOMIND_LOG_FORMAT", "").strip() == "json":
        from app.observe.logs import use_json_logs

        use_json_logs()


def _fetch(
    environ: Mapping[str, str], env_file: Path, environment: str | None, secrets: tuple[str, ...] | None
) -> bytes:
    """The versions the settings would fetch, fetched by the same code (collect, the store's batch
    reads), without validating anything (the parent does) and so without importing pydantic."""
    from app.secrets.environment import SECRET_VARIABLES
    from app.secrets.sources import collect
    from app.telemetry import SM_CALLS

    collected = collect(environ, env_file=env_file, environment=environment, secrets=secrets or SECRET_VARIABLES)
    with collected.store(environ) as store:
        store.load_all(collected.references.values())
        versions = {
            text: {
                "value": version.value,
                "version_id": version.version_id,
                "stages": list(version.stages),
                "region": version.region,
                "created": version.created,
                "fetched_at": fetched_at,
            }
            for text, (version, fetched_at) in store.versions().items()
        }
        calls = [[list(labels), count] for labels, count in store.stats.counts(SM_CALLS).items()]
    return json.dumps({"versions": versions, "calls": calls}).encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
