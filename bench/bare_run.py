"""The least a process can do to run a command with two secrets: python bench/bare_run.py NAME=SECRET_ID... -- CMD

One boto3 client, one ``BatchGetSecretValue`` for every secret id given, each value
put as it is into the variable named beside it, then ``exec`` of the command (the
script's process becomes the command's). No validation, no parsing of the values, no
error handling beyond boto3's own: the floor ``ecomind run`` is measured against.
Region, endpoint and credentials come from the environment, as for any boto3 client.
"""

from __future__ import annotations

import os
import sys

import boto3


def main() -> None:
    split = sys.argv.index("--")
    wanted = dict(arg.split("=", 1) for arg in sys.argv[1:split])
    command = sys.argv[split + 1 :]
    client = boto3.client("secretsmanager")
    response = client.batch_get_secret_value(SecretIdList=list(wanted.values()))
    by_name = {item["Name"]: item["SecretString"] for item in response["SecretValues"]}
    env = dict(os.environ)
    for variable, secret_id in wanted.items():
        env[variable] = by_name[secret_id]
    os.execvpe(command[0], command, env)  # noqa: S606 - the command is the caller's, as for `ecomind run`


if __name__ == "__main__":
    main()
