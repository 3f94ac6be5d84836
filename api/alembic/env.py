"""Alembic environment: the URL comes from EcoMind's settings, runners are serialised.

Several replicas' init containers may run ``upgrade head`` at once. Each takes a
PostgreSQL advisory lock before Alembic reads the current revision, so one applies
the migrations and the others then find the schema at head and do nothing.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from pathlib import Path

from sqlalchemy import create_engine, pool, text

from alembic import context
from app.db import sqlalchemy_url
from app.models import Base
from app.secrets import redact
from app.settings import load_settings

# Any constant works as long as every runner uses the same: "ecomind-migrations".
MIGRATION_LOCK_ID = 0x65636F6D696E64

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
redact.install()
target_metadata = Base.metadata


def _url() -> str:
    # Only DATABASE_URL: the migration task's role may read no other secret.
    settings = load_settings(env_file=Path(os.environ.get("ECOMIND_ENV_FILE", ".env")), secrets=("DATABASE_URL",))
    try:
        url = sqlalchemy_url(settings.database_url.get_secret_value())
        # render_as_string(hide_password=False): str(url) would mask the password as ***.
        return url.render_as_string(hide_password=False)
    finally:
        settings.close()


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
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
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
