"""order amount required, order status

On SQLite the batch operation rebuilds ``orders``: create a temp table, copy the rows,
drop the old table, rename. A crash between the drop and the rename loses every order
unless the whole migration is one transaction.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE orders SET amount_cents = 0 WHERE amount_cents IS NULL")
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("amount_cents", existing_type=sa.Integer(), nullable=False,
                           server_default="0")
        batch.add_column(sa.Column("status", sa.String(20), nullable=False,
                                   server_default="new"))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("status")
        batch.alter_column("amount_cents", existing_type=sa.Integer(), nullable=True,
                           server_default=None)
