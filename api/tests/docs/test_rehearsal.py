"""docs/deployment.md, "Rehearse on an emulator": the server starts from the repository root as
written, the shell block makes the operator, and a least-privilege policy (secret-??????)
reads its secret there, where stock moto_server answers 500."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.data.local import free_port, wait_port

from ..support.environment import child_env

pytestmark = pytest.mark.deploy

REPO = Path(__file__).resolve().parents[3]
AWS_CLI = REPO / ".venv-deploy" / "bin" / "aws"


def block(name: str) -> str:
    found = re.search(rf"<!-- rehearsal {name} -->\n```bash\n(.*?)```", (REPO / "docs/deployment.md").read_text(), re.S)
    assert found, f"docs/deployment.md has lost its rehearsal {name} block"
    return found.group(1)


# What the test adds after the guide's shell block: a reader allowed one secret by the
# pattern deploy/iam/ uses, reading it with ecomind.
LEAST_PRIVILEGE_READ = """
aws secretsmanager create-secret --name ecomind/staging/jwt --secret-string "$JWT" --region eu-west-1 >/dev/null
aws iam create-user --user-name reader --region us-east-1 >/dev/null
aws iam put-user-policy --user-name reader --policy-name read --region us-east-1 --policy-document \\
  '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
    "Resource": "arn:aws:secretsmanager:*:*:secret:ecomind/staging/jwt-??????"}]}'
read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY < <(aws iam create-access-key --user-name reader \\
  --region us-east-1 --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
ecomind secrets get ecomind/staging/jwt --region eu-west-1 | wc -c
"""


def on_the_rehearsal_server(script: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """The guide's server block started as written, then its shell block and ``script`` run in one shell."""
    if not AWS_CLI.exists():
        pytest.fail("the AWS CLI is missing from .venv-deploy: run make deploy-tools")
    port = free_port()
    base = child_env(keep=("HOME", "LANG"))
    path = os.pathsep.join([str(Path(sys.executable).parent), str(AWS_CLI.parent), os.environ["PATH"]])
    env = {**base, "PATH": path, "EMULATOR_PORT": str(port)}
    server = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", block("server")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the subshell and moto stop together
    )
    try:
        wait_port("127.0.0.1", port, timeout=60)
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block("shell") + script],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_the_rehearsal_server_starts_as_written_and_least_privilege_reads_work_on_it(tmp_path: Path) -> None:
    ran = on_the_rehearsal_server(LEAST_PRIVILEGE_READ, tmp_path, JWT="k" * 48)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.split()[-1] == "49", ran.stdout  # the 48 characters and a newline, read as the reader


# A role allowed the staging secrets only (as the API role's policy is), reading in one batch
# a secret of its own and one of another team's.
BATCH_ACROSS_THE_POLICY = """
aws secretsmanager create-secret --name ecomind/staging/jwt --secret-string "$JWT" --region us-east-1 >/dev/null
aws secretsmanager create-secret --name team-x/staging/jwt --secret-string "$OTHER" --region us-east-1 >/dev/null
aws iam create-user --user-name staging-api --region us-east-1 >/dev/null
aws iam put-user-policy --user-name staging-api --policy-name read --region us-east-1 --policy-document \\
  '{"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
     "Resource": "arn:aws:secretsmanager:*:*:secret:ecomind/staging/*"},
    {"Effect": "Allow", "Action": "secretsmanager:BatchGetSecretValue", "Resource": "*"}]}'
read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY < <(aws iam create-access-key --user-name staging-api \\
  --region us-east-1 --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
aws secretsmanager batch-get-secret-value --secret-id-list team-x/staging/jwt ecomind/staging/jwt \\
  --region us-east-1 --output json
"""


def test_the_rehearsal_server_denies_in_a_batch_each_secret_the_role_may_not_read(tmp_path: Path) -> None:
    other = "o" * 48
    ran = on_the_rehearsal_server(BATCH_ACROSS_THE_POLICY, tmp_path, JWT="k" * 48, OTHER=other)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    answer = json.loads(ran.stdout)
    assert [v["Name"] for v in answer["SecretValues"]] == ["ecomind/staging/jwt"]
    [error] = answer["Errors"]
    assert error["SecretId"] == "team-x/staging/jwt" and error["ErrorCode"] == "AccessDeniedException", error
    assert "secretsmanager:GetSecretValue" in error["Message"]
    assert other not in ran.stdout + ran.stderr
