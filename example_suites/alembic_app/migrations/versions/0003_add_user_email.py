"""add user email, backfilled from the name

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("email", sa.String(200), nullable=True))
    op.execute("UPDATE users SET email = lower(name) || '@example.com'")
    op.create_index("uq_users_email", "users", ["email"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_email", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
