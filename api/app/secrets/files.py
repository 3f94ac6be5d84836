"""``file:`` references: secrets mounted as files by Docker or Kubernetes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from app.secrets.base import Fetched, SecretBackend, SecretVersion
from app.secrets.errors import SecretFileError
from app.secrets.refs import FileRef

__all__ = ["FileBackend"]


class FileBackend(SecretBackend[FileRef]):
    """Reads the file on every fetch, so a rotated mount is seen at the next refresh.

    The bytes are read as they are (no newline translation: a carriage return inside
    stays one) and decoded as UTF-8; a single trailing newline, ``\n`` or ``\r\n``, is
    dropped (``echo secret > file`` adds one, an editor on Windows the second; Kubernetes
    adds none). The version id is a short digest of the content, stable while the
    content is, which is what JWT ``kid`` needs for a source without versions.
    """

    def fetch(self, keys: Sequence[FileRef]) -> dict[FileRef, Fetched]:
        return {key: self._read(key) for key in keys}

    @staticmethod
    def _read(ref: FileRef) -> Fetched:
        try:
            raw = ref.path.read_bytes().decode("utf-8")
            modified = ref.path.stat().st_mtime
        except FileNotFoundError as exc:
            return _error(ref, "no such file", exc)
        except PermissionError as exc:
            return _error(ref, "permission denied", exc)
        except IsADirectoryError as exc:
            return _error(ref, "it is a directory", exc)
        except UnicodeDecodeError as exc:
            return _error(ref, "the content is not UTF-8 text", exc)
        except OSError as exc:
            return _error(ref, exc.strerror or type(exc).__name__, exc)
        if raw.endswith("\r\n"):
            raw = raw[:-2]
        elif raw.endswith("\n"):
            raw = raw[:-1]
        digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
        return SecretVersion(value=raw, version_id=f"sha256:{digest}", created=modified)


def _error(ref: FileRef, why: str, exc: OSError | UnicodeDecodeError) -> SecretFileError:
    err = SecretFileError(
        f"cannot read {ref}: {why}",
        reference=str(ref),
        fix="check the volume mount and that the file is readable by the process user",
    )
    err.__cause__ = exc
    return err
