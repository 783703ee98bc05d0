"""Quality (SPC limits, measurement results, nonconformances, holds, e-signatures), KPI
(shift calendars), labour (attendance, bookings). The ERP exchange needs no table.

Revision ID: 0002_quality_oee_labour_erp
Revises: 0001_execution
Create Date: 2026-11-24 19:47:36.661125

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002_quality_oee_labour_erp"
down_revision: str | Sequence[str] | None = "0001_execution"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "shift_calendar",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shift_calendar")),
        sa.UniqueConstraint("code", name=op.f("uq_shift_calendar_code")),
    )
    op.create_table(
        "attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("clock_in", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clock_out", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_attendance_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance")),
    )
    op.create_index(
        "ix_attendance_person_in", "attendance", ["person_id", "clock_in"], unique=False
    )

    op.create_table(
        "electronic_signature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signer_id", sa.Integer(), nullable=False),
        sa.Column("signer", sa.String(length=100), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("meaning", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("record_ref", sa.String(length=300), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("record_json", sa.Text(), nullable=False),
        sa.Column("binding_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["signer_id"], ["person.id"], name=op.f("fk_electronic_signature_signer_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_electronic_signature")),
    )
    op.create_table(
        "equipment_calendar",
        sa.Column("equipment_id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["shift_calendar.id"],
            name=op.f("fk_equipment_calendar_calendar_id_shift_calendar"),
        ),
        sa.ForeignKeyConstraint(
            ["equipment_id"],
            ["equipment.id"],
            name=op.f("fk_equipment_calendar_equipment_id_equipment"),
        ),
        sa.PrimaryKeyConstraint("equipment_id", name=op.f("pk_equipment_calendar")),
    )
    op.create_index(
        op.f("ix_equipment_calendar_calendar_id"),
        "equipment_calendar",
        ["calendar_id"],
        unique=False,
    )

    op.create_table(
        "labour_booking",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("job_operation_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_operation_id"],
            ["job_operation.id"],
            name=op.f("fk_labour_booking_job_operation_id_job_operation"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_labour_booking_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labour_booking")),
    )
    op.create_index(
        op.f("ix_labour_booking_job_operation_id"),
        "labour_booking",
        ["job_operation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_labour_booking_person_id"), "labour_booking", ["person_id"], unique=False
    )

    op.create_table(
        "nonconformance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=30), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("characteristic_id", sa.Integer(), nullable=True),
        sa.Column("job_order_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=100), nullable=False),
        sa.Column("disposition", sa.String(length=20), nullable=True),
        sa.Column("quantity", sa.Float(), nullable=True),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signature_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["characteristic_id"],
            ["inspection_characteristic.id"],
            name=op.f("fk_nonconformance_characteristic_id_inspection_characteristic"),
        ),
        sa.ForeignKeyConstraint(
            ["job_order_id"],
            ["job_order.id"],
            name=op.f("fk_nonconformance_job_order_id_job_order"),
        ),
        sa.ForeignKeyConstraint(
            ["signature_id"],
            ["electronic_signature.id"],
            name=op.f("fk_nonconformance_signature_id_electronic_signature"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nonconformance")),
        sa.UniqueConstraint("number", name=op.f("uq_nonconformance_number")),
    )
    op.create_index(
        op.f("ix_nonconformance_job_order_id"), "nonconformance", ["job_order_id"], unique=False
    )
    op.create_index(op.f("ix_nonconformance_state"), "nonconformance", ["state"], unique=False)

    op.create_table(
        "spc_limits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("characteristic_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("baseline_n", sa.Integer(), nullable=False),
        sa.Column("centre", sa.Float(), nullable=True),
        sa.Column("sigma", sa.Float(), nullable=True),
        sa.Column("established_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("set_by", sa.String(length=100), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["characteristic_id"],
            ["inspection_characteristic.id"],
            name=op.f("fk_spc_limits_characteristic_id_inspection_characteristic"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spc_limits")),
        sa.UniqueConstraint("characteristic_id", name=op.f("uq_spc_limits_characteristic_id")),
    )
    op.create_table(
        "measurement_result",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("characteristic_id", sa.Integer(), nullable=False),
        sa.Column("job_order_id", sa.Integer(), nullable=True),
        sa.Column("job_operation_id", sa.Integer(), nullable=True),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("work_unit_id", sa.Integer(), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=30), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("in_spec", sa.Boolean(), nullable=False),
        sa.Column("spc_rules", sa.String(length=50), nullable=False),
        sa.Column("nonconformance_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["characteristic_id"],
            ["inspection_characteristic.id"],
            name=op.f("fk_measurement_result_characteristic_id_inspection_characteristic"),
        ),
        sa.ForeignKeyConstraint(
            ["job_operation_id"],
            ["job_operation.id"],
            name=op.f("fk_measurement_result_job_operation_id_job_operation"),
        ),
        sa.ForeignKeyConstraint(
            ["job_order_id"],
            ["job_order.id"],
            name=op.f("fk_measurement_result_job_order_id_job_order"),
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["material_lot.id"], name=op.f("fk_measurement_result_lot_id_material_lot")
        ),
        sa.ForeignKeyConstraint(
            ["nonconformance_id"],
            ["nonconformance.id"],
            name=op.f("fk_measurement_result_nonconformance_id_nonconformance"),
        ),
        sa.ForeignKeyConstraint(
            ["work_unit_id"],
            ["equipment.id"],
            name=op.f("fk_measurement_result_work_unit_id_equipment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurement_result")),
    )
    op.create_index(
        "ix_measurement_result_char_id",
        "measurement_result",
        ["characteristic_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_measurement_result_job_order_id"),
        "measurement_result",
        ["job_order_id"],
        unique=False,
    )

    op.create_table(
        "quality_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nonconformance_id", sa.Integer(), nullable=False),
        sa.Column("object_kind", sa.String(length=20), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["nonconformance_id"],
            ["nonconformance.id"],
            name=op.f("fk_quality_hold_nonconformance_id_nonconformance"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_hold")),
    )
    op.create_index(
        op.f("ix_quality_hold_nonconformance_id"),
        "quality_hold",
        ["nonconformance_id"],
        unique=False,
    )
    op.create_index(
        "ix_quality_hold_object", "quality_hold", ["object_kind", "object_id"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_quality_hold_object", table_name="quality_hold")
    op.drop_index(op.f("ix_quality_hold_nonconformance_id"), table_name="quality_hold")

    op.drop_table("quality_hold")
    op.drop_index(op.f("ix_measurement_result_job_order_id"), table_name="measurement_result")
    op.drop_index("ix_measurement_result_char_id", table_name="measurement_result")

    op.drop_table("measurement_result")
    op.drop_table("spc_limits")
    op.drop_index(op.f("ix_nonconformance_state"), table_name="nonconformance")
    op.drop_index(op.f("ix_nonconformance_job_order_id"), table_name="nonconformance")

    op.drop_table("nonconformance")
    op.drop_index(op.f("ix_labour_booking_person_id"), table_name="labour_booking")
    op.drop_index(op.f("ix_labour_booking_job_operation_id"), table_name="labour_booking")

    op.drop_table("labour_booking")
    op.drop_index(op.f("ix_equipment_calendar_calendar_id"), table_name="equipment_calendar")

    op.drop_table("equipment_calendar")
    op.drop_table("electronic_signature")
    op.drop_index("ix_attendance_person_in", table_name="attendance")

    op.drop_table("attendance")
    op.drop_table("shift_calendar")
