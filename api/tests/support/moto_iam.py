"""moto's server, answering Secrets Manager calls as AWS does where a rehearsal depends on it.

Three gaps of moto's IAM enforcement would make every least-privilege policy of
deploy/iam/ either crash, deny everything, or allow what AWS denies:

* moto turns a policy's ``*`` into the regex ``.*`` and leaves ``?`` as regex syntax,
  so ``...:secret:ecomind/prod/database-??????`` (the pattern AWS recommends for a
  secret's random suffix) fails with "multiple repeat". Here ``*`` is any run of
  characters, ``?`` exactly one, the rest literal, as in IAM.
* moto authorizes Secrets Manager requests against the resource ``*``, so a statement
  naming a secret never matches. Here the resource is the ARN of the secret the
  request names (``SecretId``), as AWS evaluates it; calls that name no secret
  (BatchGetSecretValue, ListSecrets, GetRandomPassword) stay on ``*``, as in AWS.
* moto answers BatchGetSecretValue with every secret asked for once the call itself is
  allowed. AWS also requires ``secretsmanager:GetSecretValue`` on each secret of the
  batch (and ``secretsmanager:ListSecrets`` for a batch by filters): a secret the caller
  may not read comes back in the answer's ``Errors`` as ``AccessDeniedException``, the
  others with their values. Here each secret of a batch is authorized so.

And gaps of moto's Secrets Manager:

* ListSecretVersionIds on a secret it does not have raises a KeyError, which its server
  answers 500 (an emulator's failure, to ``ecomind``); AWS answers
  ResourceNotFoundException, and so does this server. It also dates every version now;
  here each version has the date it was created, as in AWS.
* moto keeps, besides the stages, a "default version": what a read without a stage (every
  BatchGetSecretValue) returns, and the version PutSecretValue demotes to AWSPREVIOUS. Moving
  AWSCURRENT with UpdateSecretVersionStage (as every rotation's finishSecret does) leaves it
  behind: reads then disagree, and the next PutSecretValue leaves AWSCURRENT on two versions
  (AWS has one AWSCURRENT, which every read without a stage gets). Here it follows AWSCURRENT.

Run as ``python -m tests.support.moto_iam -H 127.0.0.1 -p PORT`` (MotoServer does).
"""

from __future__ import annotations

import json
import re
import sys
from re import Match
from typing import Any

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError
from moto.iam import access_control
from moto.secretsmanager.exceptions import SecretNotFoundException
from moto.secretsmanager.models import SecretsManagerBackend
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.server import main


def _match(pattern: str, string: str) -> Match[str] | None:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.match(f"^{regex}$", string)


def _arn_of(self: SecretsManagerResponse, secret_id: str) -> str:
    try:
        return str(self.backend.secrets[secret_id].arn)
    except Exception:  # noqa: BLE001 - an unknown secret: authorize as moto would, the call then fails as AWS's
        return "*"


def _secret_arn(self: SecretsManagerResponse) -> str:
    # moto counts the calls it lets through unchecked (INITIAL_NO_AUTH_ACTION_COUNT) just
    # after this: whether this call is checked is known only now.
    self._iam_enforced = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT  # type: ignore[attr-defined]
    secret_id = self._get_param("SecretId")
    return _arn_of(self, secret_id) if secret_id else "*"


def _request(self: SecretsManagerResponse, action: str) -> access_control.IAMRequest:
    """The caller's request, as IAM evaluates it for ``secretsmanager:action``."""
    return access_control.IAMRequest(
        account_id=self.current_account,
        method=self.method,
        path=self.raw_path,
        data=self.data,
        body=self.raw_body,
        headers=self.headers,
        action=action,
    )


def _denial(self: SecretsManagerResponse, action: str, resource: str) -> str | None:
    """AWS's message when the caller may not ``secretsmanager:action`` on ``resource``, else None."""
    request = _request(self, action)
    try:
        request.check_action_permitted(resource)
    except AccessDeniedError:
        who = request._access_key.arn
        return (
            f"User: {who} is not authorized to perform: secretsmanager:{action} on resource: {resource} "
            f"because no identity-based policy allows the secretsmanager:{action} action"
        )
    return None


_moto_batch_get_secret_value = SecretsManagerResponse.batch_get_secret_value


def _batch_get_secret_value(self: SecretsManagerResponse) -> str:
    secret_ids: list[str] = self._get_param("SecretIdList", if_none=[])
    filters: list[Any] = self._get_param("Filters", if_none=[])
    if not getattr(self, "_iam_enforced", False) or (secret_ids and filters):
        return _moto_batch_get_secret_value(self)  # unchecked, or refused by moto as by AWS
    if filters:
        _request(self, "ListSecrets").check_action_permitted("*")  # the whole call is denied without it
    errors: list[dict[str, str]] = []
    readable = []
    for secret_id in secret_ids:
        denied = _denial(self, "GetSecretValue", _arn_of(self, secret_id))
        if denied is None:
            readable.append(secret_id)
        else:
            errors.append({"SecretId": secret_id, "ErrorCode": "AccessDeniedException", "Message": denied})
    values: list[dict[str, Any]] = []
    token = None
    if readable or filters:
        values, more_errors, token = self.backend.batch_get_secret_value(
            secret_id_list=readable,
            filters=filters,
            max_results=self._get_int_param("MaxResults"),
            next_token=self._get_param("NextToken"),
        )
        errors += more_errors
    if filters:  # a secret the filters found is returned only if the caller may read it
        kept = []
        for value in values:
            denied = _denial(self, "GetSecretValue", value["ARN"])
            if denied is None:
                kept.append(value)
            else:
                errors.append({"SecretId": value["ARN"], "ErrorCode": "AccessDeniedException", "Message": denied})
        values = kept
    return json.dumps({"SecretValues": values, "Errors": errors, "NextToken": token})


_moto_list_secret_version_ids = SecretsManagerBackend.list_secret_version_ids


def _list_secret_version_ids(self: SecretsManagerBackend, secret_id: str) -> str:
    if not self._is_valid_identifier(secret_id):
        raise SecretNotFoundException()
    return _moto_list_secret_version_ids(self, secret_id)


def _dated_versions(self: SecretsManagerBackend, secret_id: str) -> str:
    answer = json.loads(_list_secret_version_ids(self, secret_id))
    versions = self.secrets[secret_id].versions
    for entry in answer["Versions"]:
        entry["CreatedDate"] = versions[entry["VersionId"]]["createdate"]
    return json.dumps(answer)


_moto_update_secret_version_stage = SecretsManagerBackend.update_secret_version_stage


def _update_secret_version_stage(
    self: SecretsManagerBackend,
    secret_id: str,
    version_stage: str,
    remove_from_version_id: str,
    move_to_version_id: str,
) -> tuple[str, str]:
    answer = _moto_update_secret_version_stage(
        self, secret_id, version_stage, remove_from_version_id, move_to_version_id
    )
    if version_stage == "AWSCURRENT":
        secret = self.secrets[secret_id]
        current = [v for v, version in secret.versions.items() if "AWSCURRENT" in version["version_stages"]]
        if current:
            secret.default_version_id = move_to_version_id if move_to_version_id in current else current[0]
    return answer


access_control.IAMPolicyStatement._match = staticmethod(_match)  # type: ignore[method-assign]
SecretsManagerResponse._determine_resource = _secret_arn  # type: ignore[attr-defined]
SecretsManagerResponse.batch_get_secret_value = _batch_get_secret_value  # type: ignore[method-assign]
SecretsManagerBackend.list_secret_version_ids = _dated_versions  # type: ignore[method-assign]
SecretsManagerBackend.update_secret_version_stage = _update_secret_version_stage  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
