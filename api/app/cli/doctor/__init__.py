"""``ecomind doctor``: the checks ``load_settings`` runs, then what needs AWS or the network.

The configuration verdicts are the inspection of :func:`app.settings.loading.inspect_settings`,
the very checks the API runs at start; the doctor adds only what they cannot know:
AWS credentials (found, and taken: sts:GetCallerIdentity, which IAM never denies) and
region, why a secret could not be read (the least-privilege policy for a denial, other
regions and similar names for a missing secret), the database (DNS, TCP, login, SSL), and
rotation (on, on schedule, none left unfinished). A check that could not run (a denied
DescribeSecret, say) is reported as not checked, never as passed, and the exit code says
so (8 when nothing failed but something was not checked). One module per check family,
the printing apart::

    command.py        the command and the order of the families
    base.py           a check's verdict, the session, the region (shared by every family)
    configuration.py  the validation load_settings runs
    access.py         AWS credentials and region; each secret readable, or why not
    connectivity.py   the database and Redis
    rotation.py       rotation on and on schedule, pending versions, stages, replicas
    report.py         the lines or the JSON document, and the exit code

May import: the secret layer (app.secrets), the settings (app.settings.loading), the database's
failure classifier and connection arguments (app.data), the rotation schedule
(app.rotation) and the CLI's shared modules (output, options, fixes, secrets.calls/kinds).
"""

__all__: list[str] = []
