"""Holds have owners: a hold is placed by a nonconformance or by a person (by hand), and
records who placed and released it and why (``mes_core.quality.holds``).

Revision ID: 0004_hold_owners
Revises: 0003_auth_change_notify
Create Date: 2026-12-03 13:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004_hold_owners"
down_revision: str | Sequence[str] | None = "0003_auth_change_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # batch: SQLite cannot change a column's nullability in place (the table is copied).
    with op.batch_alter_table("quality_hold") as batch:
        batch.alter_column("nonconformance_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(
            sa.Column("placed_by", sa.String(length=100), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("reason", sa.String(length=500), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("released_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("release_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    """Downgrade schema (holds placed by hand are dropped: they had no row before)."""
    op.execute("DELETE FROM quality_hold WHERE nonconformance_id IS NULL")
    with op.batch_alter_table("quality_hold") as batch:
        batch.drop_column("release_reason")
        batch.drop_column("released_by")
        batch.drop_column("reason")
        batch.drop_column("placed_by")
        batch.alter_column("nonconformance_id", existing_type=sa.Integer(), nullable=False)
