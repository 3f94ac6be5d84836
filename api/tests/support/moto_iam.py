"""moto's server, authorizing Secrets Manager calls against the secret's ARN as AWS does.

Two gaps of moto's IAM enforcement would make every least-privilege policy of
deploy/iam/ either crash or deny everything:

* moto turns a policy's ``*`` into the regex ``.*`` and leaves ``?`` as regex syntax,
  so ``...:secret:ecomind/prod/database-??????`` (the pattern AWS recommends for a
  secret's random suffix) fails with "multiple repeat". Here ``*`` is any run of
  characters, ``?`` exactly one, the rest literal, as in IAM.
* moto authorizes Secrets Manager requests against the resource ``*``, so a statement
  naming a secret never matches. Here the resource is the ARN of the secret the
  request names (``SecretId``), as AWS evaluates it; calls that name no secret
  (BatchGetSecretValue, ListSecrets, GetRandomPassword) stay on ``*``, as in AWS.

Run as ``python -m tests.support.moto_iam -H 127.0.0.1 -p PORT`` (MotoServer does).
"""

from __future__ import annotations

import re
import sys
from re import Match

from moto.iam import access_control
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.server import main


def _match(pattern: str, string: str) -> Match[str] | None:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.match(f"^{regex}$", string)


def _secret_arn(self: SecretsManagerResponse) -> str:
    secret_id = self._get_param("SecretId")
    if not secret_id:
        return "*"
    try:
        return str(self.backend.secrets[secret_id].arn)
    except Exception:  # noqa: BLE001 - an unknown secret: authorize as moto would, the call then fails as AWS's
        return "*"


access_control.IAMPolicyStatement._match = staticmethod(_match)  # type: ignore[method-assign]
SecretsManagerResponse._determine_resource = _secret_arn  # type: ignore[attr-defined]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
