"""STARTS cold starts at once, in threads of one process: python bench/fleet_worker.py APPROACH STARTS K

Each start builds its own session and client (as each task of a fleet would) and
loads K secrets. Runs apart from the proxy so the two do not share an interpreter
lock. Prints JSON: failed starts and seconds until all were ready.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable

import approaches


def task(approach: str, k: int) -> Callable[[], object]:
    import os

    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from app.secrets.refs import AwsRef
    from app.secrets.store import SecretStore

    names = approaches.names(k)

    def ours() -> None:
        store = SecretStore(region=os.environ["AWS_REGION"], endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        store.load([AwsRef(n) for n in names])
        store.close()

    def naive() -> None:
        session = boto3.session.Session()  # the default session is not thread-safe to build
        for n in names:
            session.client("secretsmanager").get_secret_value(SecretId=n)

    def powertools_get_secret() -> None:
        provider = SecretsProvider()  # one per task, as each process has its own
        for n in names:
            provider.get(n)

    def powertools_by_name() -> None:
        SecretsProvider().get_multiple(names=names)

    return {
        "ours": ours,
        "naive_boto3": naive,
        "powertools_get_secret": powertools_get_secret,
        "powertools_get_secrets_by_name": powertools_by_name,
    }[approach]


def main() -> None:
    approach, starts, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    run = task(approach, k)
    failures: list[str] = []
    done: list[float] = []
    barrier = threading.Barrier(starts)

    def one() -> None:
        barrier.wait()
        try:
            run()
            done.append(time.monotonic())
        except Exception as exc:  # noqa: BLE001 - a failed start is the figure
            failures.append(type(exc).__name__)

    threads = [threading.Thread(target=one) for _ in range(starts)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    print(
        json.dumps(
            {"failed": len(failures), "seconds": (max(done) - began) if done else None, "errors": sorted(set(failures))}
        )
    )


if __name__ == "__main__":
    main()
