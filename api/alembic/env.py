"""Alembic environment: the URL comes from EcoMind's settings, runners are serialised.

Several replicas' init containers may run ``upgrade head`` at once. Each takes a
PostgreSQL advisory lock before Alembic reads the current revision, so one applies
the migrations and the others then find the schema at head and do nothing.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from pathlib import Path

from sqlalchemy import Engine, pool, text

from alembic import context
from app.data.engine import make_engine, sqlalchemy_url
from app.data.tables import Base
from app.secrets import redact
from app.settings.loading import Settings, load_settings

# Any constant works as long as every runner uses the same: "ecomind-migrations".
MIGRATION_LOCK_ID = 0x65636F6D696E64

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
redact.install()
target_metadata = Base.metadata


def _settings() -> Settings:
    # Only DATABASE_URL: the migration task's role may read no other secret.
    return load_settings(env_file=Path(os.environ.get("ECOMIND_ENV_FILE", ".env")), secrets=("DATABASE_URL",))


def run_offline() -> None:
    # Offline mode prints SQL: the dialect is all it needs, never the password.
    settings = _settings()
    try:
        url = sqlalchemy_url(settings.secret("DATABASE_URL").get().value.get_secret_value()).set(password=None)
    finally:
        settings.close()
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    # The API's engine: credentials from the store per connection, so a migration
    # started during a rotation follows it like the API does.
    settings = _settings()
    engine = make_engine(settings, poolclass=pool.NullPool)
    try:
        _migrate(engine)
    finally:
        engine.dispose()
        settings.close()


def _migrate(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
