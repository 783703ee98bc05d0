"""Genealogy edges per consuming operation: a lot consumed by two operations of a job order
gives two edges into the output lot, each booked on its operation
(``mes_core.domain.genealogy``).

Revision ID: 0005_genealogy_edge_operation
Revises: 0004_hold_owners
Create Date: 2026-12-03 13:55:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005_genealogy_edge_operation"
down_revision: str | Sequence[str] | None = "0004_hold_owners"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # batch: SQLite cannot drop a constraint in place (the table is copied).
    with op.batch_alter_table("lot_genealogy") as batch:
        batch.drop_constraint("uq_lot_edge", type_="unique")
        batch.create_unique_constraint(
            "uq_lot_edge_operation", ["parent_lot_id", "child_lot_id", "job_operation_id"]
        )


def downgrade() -> None:
    """Downgrade schema (fails if a lot went into another through two operations)."""
    with op.batch_alter_table("lot_genealogy") as batch:
        batch.drop_constraint("uq_lot_edge_operation", type_="unique")
        batch.create_unique_constraint("uq_lot_edge", ["parent_lot_id", "child_lot_id"])
