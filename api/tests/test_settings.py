"""Settings from env, .env and Secrets Manager (moto over HTTP), with the policy applied."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app.secrets.errors import SettingsError
from app.settings.loading import Settings, load_settings

from .conftest import CANARY, Aws, opened
from .support.awsproxy import AwsProxy

JWT = "j" * 48
# Exactly the seed's `aws secretsmanager create-secret` for production: RDS fields, no connection_string.
SEED_PROD_DATABASE = {
    "engine": "postgres",
    "host": "ecomind-prod.cluster-xyz.us-east-1.rds.amazonaws.com",
    "port": 5432,
    "dbname": "ecomind",
    "username": "ecomind_app",
    "password": "Gx7-generated-by-rotation-q2",
}


def load(aws: Aws, env_file: Path | None = None, **env: str) -> Settings:
    return opened(load_settings({**aws.env, **env}, env_file=env_file))


def value(settings: Settings, variable: str) -> str:
    return settings.secret(variable).get().value.get_secret_value()


def problems_of(info: pytest.ExceptionInfo[SettingsError]) -> dict[str, str]:
    return {p.variable: p.message for p in info.value.problems if p.severity == "error"}


def test_production_database_url_is_built_from_the_seed_secret(aws: Aws) -> None:
    aws.create("ecomind/prod/database", json.dumps(SEED_PROD_DATABASE))
    aws.create("ecomind/prod/jwt", JWT)
    settings = load(aws, ENVIRONMENT="production")
    assert value(settings, "DATABASE_URL") == (
        "postgresql://ecomind_app:Gx7-generated-by-rotation-q2@"
        "ecomind-prod.cluster-xyz.us-east-1.rds.amazonaws.com:5432/ecomind?sslmode=require"
    )
    assert value(settings, "JWT_SECRET") == JWT
    assert settings.origins["DATABASE_URL"].describe() == "default -> aws-secretsmanager:ecomind/prod/database"
    assert settings.secret("DATABASE_URL").get() is settings.secret("DATABASE_URL").get()  # cached, no fetch
    settings.close()


def test_seed_staging_shape_and_ecs_arn_with_connection_string_key(aws: Aws) -> None:
    staging = {
        "connection_string": "postgresql://ecomind_app:St4ging-pw@rds-staging:5432/ecomind",
        "host": "rds-staging",
        "port": "5432",
        "database": "ecomind",
        "username": "ecomind_app",
        "password": "St4ging-pw",
    }
    arn = aws.create("ecomind/staging/database", json.dumps(staging))
    aws.create("ecomind/staging/jwt", JWT)
    expected = "postgresql://ecomind_app:St4ging-pw@rds-staging:5432/ecomind?sslmode=require"
    by_default = load(aws, ENVIRONMENT="staging")
    by_arn = load(aws, ENVIRONMENT="staging", DATABASE_URL=f"{arn}:connection_string::")
    assert value(by_default, "DATABASE_URL") == expected
    assert value(by_arn, "DATABASE_URL") == expected
    by_default.close()
    by_arn.close()


def test_production_url_keeps_its_query_and_gets_sslmode(aws: Aws) -> None:
    settings = load(
        aws,
        ENVIRONMENT="production",
        DATABASE_URL="postgresql://u:p4ss-word@h:5432/db?connect_timeout=5",
        JWT_SECRET=JWT,
    )
    assert value(settings, "DATABASE_URL") == "postgresql://u:p4ss-word@h:5432/db?connect_timeout=5&sslmode=require"


def test_production_refuses_sslmode_disable_and_keeps_verify_full(aws: Aws) -> None:
    with pytest.raises(SettingsError) as info:
        load(
            aws, ENVIRONMENT="production", DATABASE_URL="postgresql://u:p4ss-word@h/db?sslmode=disable", JWT_SECRET=JWT
        )
    assert "sslmode=disable is refused" in problems_of(info)["DATABASE_URL"]
    kept = load(
        aws, ENVIRONMENT="production", DATABASE_URL="postgresql://u:p4ss-word@h/db?sslmode=verify-full", JWT_SECRET=JWT
    )
    assert value(kept, "DATABASE_URL").endswith("?sslmode=verify-full")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JWT_SECRET", "local_dev_secret_change_in_production"),
        ("DATABASE_URL", "postgresql://ecomind:ecomind_dev_pass@localhost:5432/ecomind"),
        ("DATABASE_URL", "postgresql://ecomind:REPLACE_WITH_GENERATED_PASSWORD@localhost:5432/ecomind"),
        ("DATABASE_URL", "postgresql://ecomind:<generated-by-secrets-manager>@localhost:5432/ecomind"),
        ("REDIS_URL", "redis://:changeme@localhost:6379/0"),
    ],
)
def test_example_values_are_errors_in_production_and_never_shown(
    aws: Aws, variable: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"DATABASE_URL": "postgresql://u:Real-pw-123@h/db", "JWT_SECRET": JWT, variable: value}
    with caplog.at_level(logging.DEBUG), pytest.raises(SettingsError) as info:
        load(aws, ENVIRONMENT="production", **env)
    assert "known example value" in problems_of(info)[variable]
    secret = value.split(":")[-1].split("@")[0] if "://" in value else value
    assert secret not in str(info.value) and secret not in caplog.text


def test_example_values_are_only_warnings_in_development(aws: Aws) -> None:
    settings = load(aws, DATABASE_URL="postgresql://e:ecomind_dev_pass@h/db", JWT_SECRET="changeme")
    assert {p.variable for p in settings.warnings} == {"DATABASE_URL", "JWT_SECRET"}
    assert all(p.severity == "warning" for p in settings.warnings)


def test_dotenv_is_read_in_development_only(aws: Aws, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"DATABASE_URL=postgresql://u:from-dotenv-pw@h/db\nJWT_SECRET={CANARY}\n")
    dev = load(aws, env_file=env_file)
    assert value(dev, "JWT_SECRET") == CANARY
    assert dev.origins["JWT_SECRET"].source == ".env"
    aws.create("ecomind/prod/jwt", JWT)
    prod = load(aws, env_file=env_file, ENVIRONMENT="production", DATABASE_URL="postgresql://u:Real-pw-123@h/db")
    assert value(prod, "JWT_SECRET") == JWT
    [report] = [p for p in prod.warnings if p.variable == ".env"]
    assert "ignored in production" in report.message
    assert CANARY not in report.render()


def test_a_database_password_with_a_raw_at_sign_is_refused_naming_its_source_and_the_fix(
    aws: Aws, tmp_path: Path
) -> None:
    head, tail = CANARY[:20], CANARY[20:]
    env_file = tmp_path / ".env"
    env_file.write_text(f"DATABASE_URL=postgresql://ecomind:{head}@{tail}@127.0.0.1:25432/ecomind\nJWT_SECRET={JWT}\n")
    with pytest.raises(SettingsError) as info:
        load(aws, env_file=env_file)
    [problem] = info.value.problems
    assert (problem.variable, problem.source, problem.severity) == ("DATABASE_URL", ".env", "error")
    assert "raw '@'" in problem.message and "%40" in problem.fix
    text = str(info.value)
    assert "DATABASE_URL" in text and ".env" in text
    for fragment in (CANARY, head, tail):
        assert fragment not in text


def test_environment_from_dotenv_cannot_turn_on_production(aws: Aws, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ENVIRONMENT=production\n")
    with pytest.raises(SettingsError) as info:
        load(aws, env_file=env_file, DATABASE_URL="postgresql://u:Real-pw-123@h/db", JWT_SECRET=JWT)
    assert "only read in development" in problems_of(info)["ENVIRONMENT"]


def test_all_problems_are_reported_together(aws: Aws) -> None:
    with pytest.raises(SettingsError) as info:
        load(
            aws,
            ENVIRONMENT="production",
            DATABASE_URL="mysql://u:p@h/db",
            JWT_SECRET="short",
            REDIS_URL="aws-secretsmanager:a:b:AWSCURRENT:v1",
            ACCESS_TOKEN_EXPIRE_MINUTES="-3",
        )
    assert set(problems_of(info)) == {"DATABASE_URL", "JWT_SECRET", "REDIS_URL", "ACCESS_TOKEN_EXPIRE_MINUTES"}


def test_three_references_resolve_in_one_request(aws: Aws, proxy: AwsProxy) -> None:
    aws.create("refs/database", json.dumps(SEED_PROD_DATABASE))
    aws.create("refs/jwt", JWT)
    aws.create("refs/redis", "redis://:Redis-pw-4410@cache:6379/0")
    proxy.reset()
    settings = load(
        aws,
        ENVIRONMENT="staging",
        DATABASE_URL="aws-secretsmanager:refs/database",
        JWT_SECRET="aws-secretsmanager:refs/jwt",
        REDIS_URL="aws-secretsmanager:refs/redis",
    )
    assert proxy.counts == {"BatchGetSecretValue": 1}
    assert "Redis-pw-4410" in value(settings, "REDIS_URL")
    proxy.reset()
    jwt = settings.secret("JWT_SECRET")
    for _ in range(10_000):
        jwt.get()
    assert proxy.total == 0
    settings.close()


def test_file_reference_for_the_jwt_secret(aws: Aws, tmp_path: Path) -> None:
    (tmp_path / "jwt").write_text(JWT + "\n")
    settings = load(aws, DATABASE_URL="postgresql://u:p@h/db", JWT_SECRET=f"file:{tmp_path / 'jwt'}")
    assert value(settings, "JWT_SECRET") == JWT
    assert settings.secret("JWT_SECRET").get().version_id is not None


def test_settings_are_immutable(aws: Aws) -> None:
    settings = load(aws, DATABASE_URL="postgresql://u:p@h/db", JWT_SECRET=JWT)
    with pytest.raises(Exception, match="frozen"):
        settings.access_token_expire_minutes = 5  # type: ignore[misc]
    assert CANARY not in repr(settings) and JWT not in repr(settings)


def test_the_settings_fields_are_the_models_variables_with_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.secrets.environment import SECRET_VARIABLES, VARIABLES

    plain = [v for v in VARIABLES if v.name not in SECRET_VARIABLES]
    assert [f.alias for f in Settings.model_fields.values()] == [v.name for v in plain]
    # Nothing is read from the environment by the model itself: the secret layer is the reader.
    monkeypatch.setenv("ACCESS_TOKEN_EXPIRE_MINUTES", "5")
    built = Settings.model_validate({"SECRETS_PREFIX": "ecomind/dev"})
    shown = built.plain()
    for v in plain:
        if v.default is not None:
            assert shown[v.name] == v.default, v.name
    assert shown["SECRETS_PREFIX"] == "ecomind/dev" and shown["SECRETS_REPLICA_REGIONS"] is None
