"""``ecomind init``: a development ``.env`` with freshly generated secrets."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from app.cli.output import ExitCode, data, fail
from app.secrets.environment import LOCAL_GENERATION

__all__ = ["init"]


def render_env(template: str) -> str:
    """The template with each placeholder replaced by a new random value.

    Every occurrence of one placeholder gets the same value: the database password
    appears in DATABASE_URL and in POSTGRES_PASSWORD (read by docker compose).
    """
    for placeholder, size in LOCAL_GENERATION.items():
        if placeholder in template:
            # token_urlsafe output is [A-Za-z0-9_-]: safe inside a URL without quoting.
            template = template.replace(placeholder, secrets.token_urlsafe(size))
    return template


def _free_local_ports(text: str) -> tuple[str, list[str]]:
    """Point DATABASE_URL and REDIS_URL at free ports when theirs are taken on this machine.

    `make run` starts the project's own PostgreSQL and Redis where .env points; a
    developer's own PostgreSQL already on 5432 would otherwise answer instead, and
    refuse the generated password.
    """
    from app.data.local import free_port, port_open

    notes = []
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        name, sep, value = line.partition("=")
        if name.strip() not in ("DATABASE_URL", "REDIS_URL") or not sep:
            continue
        try:
            parts = urlsplit(value.strip())
            host, port = parts.hostname, parts.port
        except ValueError:
            continue
        if host not in ("127.0.0.1", "localhost") or port is None or not port_open("127.0.0.1", port):
            continue
        new = free_port()
        lines[i] = line.replace(f"{parts.hostname}:{port}", f"{parts.hostname}:{new}", 1)
        notes.append(f"port {port} is taken on this machine: {name.strip()} uses {new} for the project's own server")
    return "".join(lines), notes


def _find_example(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".env.example"
        if candidate.is_file():
            return candidate
    return None


def init(
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing file (the old one is kept as PATH.bak).")
    ] = False,
    path: Annotated[Path, typer.Option("--path", help="Where to write.")] = Path(".env"),
    example: Annotated[
        Path | None, typer.Option("--example", help="Template; default: .env.example here or in a parent folder.")
    ] = None,
) -> None:
    """Write a development .env from .env.example with newly generated secrets.

    The file is created with mode 0600. Nothing generated is printed.

    Example: ecomind init            (then: ecomind config check)
    """
    template_path = example or _find_example(Path.cwd())
    if template_path is None or not template_path.is_file():
        fail(
            ".env.example not found",
            ExitCode.USAGE,
            fix="run from the repository root, or: ecomind init --example PATH",
        )
    if path.exists() and not force:
        fail(
            f"{path} already exists; keeping it",
            ExitCode.FAILED,
            fix=f"ecomind init --force   # keeps the old one as {path}.bak",
        )
    content, notes = _free_local_ports(render_env(template_path.read_text(encoding="utf-8")))
    for note in notes:
        data(note)
    if not path.parent.is_dir():
        fail(f"{path.parent} is not a folder", ExitCode.USAGE, fix="mkdir -p " + str(path.parent))
    if path.exists():
        # Never overwrite an earlier backup: .env.bak, then .env.bak.1, .env.bak.2...
        backup = path.with_name(path.name + ".bak")
        n = 0
        while backup.exists():
            n += 1
            backup = path.with_name(f"{path.name}.bak.{n}")
        os.replace(path, backup)
        os.chmod(backup, 0o600)
        data(f"kept the previous file as {backup}")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    data(f"wrote {path} (mode 0600) with new DATABASE_URL password and JWT_SECRET from {template_path}")
