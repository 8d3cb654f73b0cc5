"""Runs and files of bearer-token callers: their key may be none, the token's subject
kept.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("key_id", existing_type=sa.String(40), nullable=True)
        batch.add_column(sa.Column("subject", sa.String(255), nullable=True))
    with op.batch_alter_table("files") as batch:
        batch.alter_column("key_id", existing_type=sa.String(40), nullable=True)
        batch.add_column(sa.Column("subject", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_column("subject")
        batch.alter_column("key_id", existing_type=sa.String(40), nullable=False)
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("subject")
        batch.alter_column("key_id", existing_type=sa.String(40), nullable=False)
