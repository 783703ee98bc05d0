"""Segment dependencies (issue 17, assembly stations): an operations segment may name the
segments it follows (``operations_segment.depends_on``, ISA-95 Part 2 segment dependency),
so an assembly's feeder operations run side by side and the assembly follows them all;
NULL keeps the routing's order (every earlier segment).

Revision ID: 0008_segment_dependencies
Revises: 0007_operation_work_units
Create Date: 2026-12-03 20:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008_segment_dependencies"
down_revision: str | Sequence[str] | None = "0007_operation_work_units"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("operations_segment") as batch:
        batch.add_column(sa.Column("depends_on", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("operations_segment") as batch:
        batch.drop_column("depends_on")
