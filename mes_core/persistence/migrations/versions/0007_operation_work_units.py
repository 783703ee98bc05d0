"""An operation runs on several work units at once (issue 17, parallel stations): each
segment says how many work units of its class may run one operation
(``operations_segment.max_work_units``, ISA-95 equipment specification quantity), each work
unit an operation runs on is a ``job_operation_unit`` row with its own start, end and
counts, and a consumption may name the work unit that drew the lot. Existing started
operations get the row of their one work unit.

Revision ID: 0007_operation_work_units
Revises: 0006_security_login_throttle
Create Date: 2026-12-03 20:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007_operation_work_units"
down_revision: str | Sequence[str] | None = "0006_security_login_throttle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("operations_segment") as batch:
        batch.add_column(
            sa.Column("max_work_units", sa.Integer(), nullable=False, server_default="1")
        )
    op.create_table(
        "job_operation_unit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_operation_id", sa.Integer(), nullable=False),
        sa.Column("work_unit_id", sa.Integer(), nullable=False),
        sa.Column("good", sa.Float(), nullable=False),
        sa.Column("scrap", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_operation_id"],
            ["job_operation.id"],
            name=op.f("fk_job_operation_unit_job_operation_id_job_operation"),
        ),
        sa.ForeignKeyConstraint(
            ["work_unit_id"],
            ["equipment.id"],
            name=op.f("fk_job_operation_unit_work_unit_id_equipment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_operation_unit")),
        sa.UniqueConstraint("job_operation_id", "work_unit_id", name="uq_job_operation_unit"),
    )
    op.create_index(
        op.f("ix_job_operation_unit_job_operation_id"),
        "job_operation_unit",
        ["job_operation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_job_operation_unit_work_unit_id"),
        "job_operation_unit",
        ["work_unit_id"],
        unique=False,
    )
    # Every operation started so far ran on its one work unit.
    op.execute(
        "INSERT INTO job_operation_unit "
        "(job_operation_id, work_unit_id, good, scrap, started_at, ended_at) "
        "SELECT id, work_unit_id, good, scrap, started_at, ended_at FROM job_operation "
        "WHERE work_unit_id IS NOT NULL AND started_at IS NOT NULL"
    )
    with op.batch_alter_table("material_consumption") as batch:
        batch.add_column(sa.Column("work_unit_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_material_consumption_work_unit_id_equipment"),
            "equipment",
            ["work_unit_id"],
            ["id"],
        )


def downgrade() -> None:
    """Downgrade schema (which work unit drew a lot, and every unit but an operation's
    first, are forgotten)."""
    with op.batch_alter_table("material_consumption") as batch:
        batch.drop_constraint(
            op.f("fk_material_consumption_work_unit_id_equipment"), type_="foreignkey"
        )
        batch.drop_column("work_unit_id")
    op.drop_index(op.f("ix_job_operation_unit_work_unit_id"), table_name="job_operation_unit")
    op.drop_index(op.f("ix_job_operation_unit_job_operation_id"), table_name="job_operation_unit")
    op.drop_table("job_operation_unit")
    with op.batch_alter_table("operations_segment") as batch:
        batch.drop_column("max_work_units")
