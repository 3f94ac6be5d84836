"""What every printed fix shares: the region it runs in, and who may run it.

A fix runs as printed in the shell the docs use. docs/deployment.md passes the region
inline (``AWS_REGION="$REGION" ecomind doctor ...``), so the next command does not
inherit it: every ``ecomind secrets`` command a fix prints carries ``--region``
(:func:`app.secrets.regions.region_option`; the docs' ``$REGION`` when not known).

Who may run it follows the roles of the environment model and their policies in
deploy/iam/: the API and migration roles read, the rotation role writes new versions
of the environment's secrets, and creating, restoring, tagging or rotating a secret
through Secrets Manager (RotateSecret) is the operator's, who provisioned them.
"""

from __future__ import annotations

from app.secrets.environment import EnvironmentModel
from app.secrets.regions import region_option

__all__ = [
    "DB_HOST_PLACEHOLDER",
    "MASTER_URL_FILE_PLACEHOLDER",
    "by_operator",
    "by_rotation_role",
    "master_url_note",
    "password_reset_fix",
    "secrets_command",
    "who_may",
]

# The database endpoint of a printed provision when it is not known: the docs' DB_HOST
# (docs/deployment.md), which the shell refuses to expand while it is unset.
DB_HOST_PLACEHOLDER = '"${DB_HOST:?set DB_HOST to the database endpoint}"'
# The master user's URL goes in a file, never on a command line (shell history, ps).
MASTER_URL_FILE_PLACEHOLDER = '"${MASTER_URL_FILE:?set MASTER_URL_FILE to a file holding the master URL}"'


def secrets_command(words: str, region: str | None, *, note: str = "") -> str:
    """``ecomind secrets WORDS --region R``, with a ``# note`` when given."""
    command = f"ecomind secrets {words} {region_option(region)}"
    return f"{command}   # {note}" if note else command


def by_operator(m: EnvironmentModel | None) -> str:
    """Who runs a command no role of the environment may: the operator."""
    roles = f"; {m.role_name('api')} and the other task roles may not" if m else ""
    return f"as the operator who provisioned the secrets{roles}"


def who_may(action: str, m: EnvironmentModel | None) -> str:
    """Who runs a command whose Secrets Manager ``action`` the role was denied: the API role
    describes its secrets and lists their versions; anything else that is no read of a value
    (PutSecretValue, RestoreSecret, ListSecrets, RotateSecret...) is the operator's."""
    if action in ("DescribeSecret", "ListSecretVersionIds"):
        return f"as {m.role_name('api')} or the operator" if m else "as the API role or the operator"
    return by_operator(m)


def by_rotation_role(m: EnvironmentModel | None) -> str:
    """Who runs a local rotation: the rotation role (it writes new versions), or the operator."""
    return f"as {m.role_name('rotation')} or the operator" if m else "as the rotation role or the operator"


def master_url_note(where: str = "HOST:PORT") -> str:
    """What the file of ``--master-url-file`` holds, and the other ways to give it."""
    return (
        f"MASTER_URL_FILE: a file only you can read (chmod 600) holding "
        f"postgresql://MASTER_USER:MASTER_PASSWORD@{where}/postgres; in a terminal, leave the option out "
        "and it asks (not echoed)"
    )


def password_reset_fix(m: EnvironmentModel, secret: str, region: str | None, where: str) -> str:
    """The fix of a database that refuses the stored password (the doctor's, the API's at start):
    a rotation with the master user's help sets a new one in both, and finishes a half-done
    rotation. The master user's URL goes in a file (or a prompt), never on the command line."""
    return secrets_command(
        f"rotate {secret} --local --master-url-file {MASTER_URL_FILE_PLACEHOLDER}",
        region,
        note=f"{master_url_note(where)}; {by_rotation_role(m)}, where the database is reachable",
    )
