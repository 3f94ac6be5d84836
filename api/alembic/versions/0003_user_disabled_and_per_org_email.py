"""Users: a disabled flag, and an email unique per organisation instead of globally.

A global unique email told an ADMIN of one organisation, through a 409, that an
address was registered in another. Each membership is now its own user; login
picks among the memberships whose password matches.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint("users_email_key", "users", type_="unique")
    op.create_unique_constraint("uq_users_org_email", "users", ["org_id", "email"])
    op.create_index("ix_users_email", "users", ["email"])


def downgrade() -> None:
    # Fails, naming the constraint, when one email has users in several organisations:
    # those must be merged or removed first.
    op.drop_index("ix_users_email", "users")
    op.drop_constraint("uq_users_org_email", "users", type_="unique")
    op.create_unique_constraint("users_email_key", "users", ["email"])
    op.drop_column("users", "disabled_at")
