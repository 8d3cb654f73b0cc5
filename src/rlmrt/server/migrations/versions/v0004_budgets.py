"""USD per day budgets of tenants and keys (their own; None: the [server] default).

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
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("daily_usd", sa.Float(), nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("daily_usd", sa.Float(), nullable=True))
    op.create_index("ix_runs_key_id", "runs", ["key_id"])  # a key's spending of the day


def downgrade() -> None:
    op.drop_index("ix_runs_key_id", "runs")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("daily_usd")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("daily_usd")
