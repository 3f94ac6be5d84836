"""The ways EcoMind could load K secrets: ours and the anchors, each used as its docs say.

Each ``load_*`` function starts from nothing constructed (no session, no client,
no provider) and returns the K values. Secrets are named bench/s0..bench/sK-1 and
hold {"v<i>": "value-<i>"}; AWS_ENDPOINT_URL and AWS_REGION point at the proxy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

APPROACHES = (
    "ours",
    "naive_boto3",
    "pydantic_settings",
    "secretsmanager_caching",
    "powertools_get_secret",
    "powertools_get_secrets_by_name",
)
LABELS = {
    "ours": "ours (SecretStore.load)",
    "naive_boto3": "naive boto3, sequential",
    "pydantic_settings": "pydantic-settings, one source per secret",
    "secretsmanager_caching": "aws-secretsmanager-caching",
    "powertools_get_secret": "Powertools get_secret",
    "powertools_get_secrets_by_name": "Powertools get_secrets_by_name",
}


def names(k: int) -> list[str]:
    return [f"bench/s{i}" for i in range(k)]


def load_ours(k: int) -> list[str]:
    from app.secrets.refs import AwsRef
    from app.secrets.regions import parse_regions
    from app.secrets.store import SecretStore

    refs = [AwsRef(n) for n in names(k)]
    # The replica regions as the settings read them (none unless SECRETS_REPLICA_REGIONS is set).
    replicas, _ = parse_regions(os.environ.get("SECRETS_REPLICA_REGIONS"))
    store = SecretStore(
        region=os.environ["AWS_REGION"], endpoint_url=os.environ["AWS_ENDPOINT_URL"], replica_regions=replicas
    )
    got = store.load(refs)
    return [got[r].value.get_secret_value() for r in refs]


def load_naive_boto3(k: int) -> list[str]:
    import boto3

    def get_value(name: str) -> str:  # the original note's get_database_url: a client per call
        client = boto3.client("secretsmanager")
        return str(client.get_secret_value(SecretId=name)["SecretString"])

    return [get_value(n) for n in names(k)]


def load_pydantic_settings(k: int) -> list[str]:
    from pydantic_settings import AWSSecretsManagerSettingsSource, BaseSettings, PydanticBaseSettingsSource

    fields: dict[str, Any] = {f"v{i}": (str, ...) for i in range(k)}
    from pydantic import create_model

    class Base(BaseSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return tuple(AWSSecretsManagerSettingsSource(settings_cls, secret_id=n) for n in names(k))

    model = create_model("BenchSettings", __base__=Base, **fields)
    settings = model()
    return [getattr(settings, f"v{i}") for i in range(k)]


def load_secretsmanager_caching(k: int) -> list[str]:
    import botocore.session
    from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

    client = botocore.session.get_session().create_client("secretsmanager")
    cache = SecretCache(config=SecretCacheConfig(), client=client)
    return [cache.get_secret_string(n) for n in names(k)]


def load_powertools_get_secret(k: int) -> list[str]:
    from aws_lambda_powertools.utilities import parameters

    return [str(parameters.get_secret(n)) for n in names(k)]


def load_powertools_get_secrets_by_name(k: int) -> list[str]:
    from aws_lambda_powertools.utilities import parameters

    got = parameters.get_secrets_by_name(names(k))
    return [str(got[n]) for n in names(k)]


LOADERS: dict[str, Callable[[int], list[str]]] = {a: globals()[f"load_{a}"] for a in APPROACHES}

# What each approach imports, loaded before the timed region of a cold start.
IMPORTS = {
    # app.secrets.aws imports botocore, which the store imports only when a Secrets Manager
    # reference is read (ecomind run's fast path): imported here like boto3 for the anchors.
    "ours": ["app.secrets.store", "app.secrets.refs", "app.secrets.regions", "app.secrets.aws"],
    "naive_boto3": ["boto3"],
    "pydantic_settings": ["pydantic_settings", "boto3"],
    "secretsmanager_caching": ["aws_secretsmanager_caching", "botocore.session"],
    "powertools_get_secret": ["aws_lambda_powertools.utilities.parameters"],
    "powertools_get_secrets_by_name": ["aws_lambda_powertools.utilities.parameters"],
}
