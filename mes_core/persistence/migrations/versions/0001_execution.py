"""Execution core: equipment, material and lots, routings, personnel, auth, job orders,
genealogy, plant events, audit trail.

Revision ID: 0001_execution (edited in place while the project is unreleased). Revisions of
other parts (quality, KPI, labour, ERP) depend on this one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001_execution"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("object_ref", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "equipment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("equipment_class", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_reason", sa.String(length=200), nullable=False),
        sa.Column("state_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("qualified", sa.Boolean(), nullable=False),
        sa.Column("qualification_due", sa.Date(), nullable=True),
        sa.Column("calibration_due", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["equipment.id"], name=op.f("fk_equipment_parent_id_equipment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equipment")),
        sa.UniqueConstraint("code", name=op.f("uq_equipment_code")),
    )
    with op.batch_alter_table("equipment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_equipment_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "material_definition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=30), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_material_definition")),
        sa.UniqueConstraint("code", name=op.f("uq_material_definition_code")),
    )
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("code", name=op.f("uq_person_code")),
    )
    op.create_table(
        "plant_event",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("work_unit", sa.String(length=100), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("good", sa.Integer(), nullable=True),
        sa.Column("scrap", sa.Integer(), nullable=True),
        sa.Column("job_order", sa.String(length=100), nullable=True),
        sa.Column("material_lot", sa.String(length=100), nullable=True),
        sa.Column("characteristic", sa.String(length=100), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=30), nullable=True),
        sa.Column("alarm", sa.String(length=100), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=True),
        sa.Column("message", sa.String(length=500), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("source", "sequence", name=op.f("pk_plant_event")),
    )
    with op.batch_alter_table("plant_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_plant_event_unit_kind_ts", ["work_unit", "kind", "ts"], unique=False
        )

    op.create_table(
        "auth_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_auth_token_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_token_token_hash")),
    )
    op.create_table(
        "certification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("skill", sa.String(length=100), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_certification_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certification")),
    )
    with op.batch_alter_table("certification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certification_person_id"), ["person_id"], unique=False)

    op.create_table(
        "equipment_state_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("equipment_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["equipment_id"],
            ["equipment.id"],
            name=op.f("fk_equipment_state_history_equipment_id_equipment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equipment_state_history")),
    )
    with op.batch_alter_table("equipment_state_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_equipment_state_history_unit_time", ["equipment_id", "started_at"], unique=False
        )

    op.create_table(
        "operations_definition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["material_definition.id"],
            name=op.f("fk_operations_definition_product_id_material_definition"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations_definition")),
        sa.UniqueConstraint("code", name=op.f("uq_operations_definition_code")),
    )
    op.create_table(
        "job_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_before_hold", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["operations_definition.id"],
            name=op.f("fk_job_order_definition_id_operations_definition"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["material_definition.id"],
            name=op.f("fk_job_order_product_id_material_definition"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_order")),
        sa.UniqueConstraint("code", name=op.f("uq_job_order_code")),
    )
    with op.batch_alter_table("job_order", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_order_state"), ["state"], unique=False)

    op.create_table(
        "operations_segment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("equipment_class", sa.String(length=100), nullable=False),
        sa.Column("pru_seconds", sa.Float(), nullable=False),
        sa.Column("skill", sa.String(length=100), nullable=True),
        sa.Column("allow_partial", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["operations_definition.id"],
            name=op.f("fk_operations_segment_definition_id_operations_definition"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations_segment")),
        sa.UniqueConstraint("definition_id", "sequence", name="uq_segment_seq"),
    )
    op.create_table(
        "inspection_characteristic",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("lsl", sa.Float(), nullable=True),
        sa.Column("target", sa.Float(), nullable=True),
        sa.Column("usl", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=30), nullable=False),
        sa.Column("sampling_frequency", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["operations_segment.id"],
            name=op.f("fk_inspection_characteristic_segment_id_operations_segment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_characteristic")),
    )
    with op.batch_alter_table("inspection_characteristic", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inspection_characteristic_segment_id"), ["segment_id"], unique=False
        )

    op.create_table(
        "job_operation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_order_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("planned_work_unit_id", sa.Integer(), nullable=True),
        sa.Column("work_unit_id", sa.Integer(), nullable=True),
        sa.Column("good", sa.Float(), nullable=False),
        sa.Column("scrap", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_order_id"], ["job_order.id"], name=op.f("fk_job_operation_job_order_id_job_order")
        ),
        sa.ForeignKeyConstraint(
            ["planned_work_unit_id"],
            ["equipment.id"],
            name=op.f("fk_job_operation_planned_work_unit_id_equipment"),
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["operations_segment.id"],
            name=op.f("fk_job_operation_segment_id_operations_segment"),
        ),
        sa.ForeignKeyConstraint(
            ["work_unit_id"], ["equipment.id"], name=op.f("fk_job_operation_work_unit_id_equipment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_operation")),
        sa.UniqueConstraint("job_order_id", "sequence", name="uq_job_operation_seq"),
    )
    with op.batch_alter_table("job_operation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_operation_job_order_id"), ["job_order_id"], unique=False
        )
        batch_op.create_index(
            "ix_job_operation_unit_state", ["work_unit_id", "state"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_job_operation_work_unit_id"), ["work_unit_id"], unique=False
        )

    op.create_table(
        "segment_material",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("material_id", sa.Integer(), nullable=False),
        sa.Column("quantity_per_unit", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["material_definition.id"],
            name=op.f("fk_segment_material_material_id_material_definition"),
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["operations_segment.id"],
            name=op.f("fk_segment_material_segment_id_operations_segment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_material")),
    )
    with op.batch_alter_table("segment_material", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_material_segment_id"), ["segment_id"], unique=False
        )

    op.create_table(
        "job_operation_operator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_operation_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_operation_id"],
            ["job_operation.id"],
            name=op.f("fk_job_operation_operator_job_operation_id_job_operation"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_job_operation_operator_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_operation_operator")),
    )
    with op.batch_alter_table("job_operation_operator", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_operation_operator_job_operation_id"),
            ["job_operation_id"],
            unique=False,
        )

    op.create_table(
        "material_lot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("material_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_before_hold", sa.String(length=20), nullable=True),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("initial_quantity", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("produced_by_operation_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["material_definition.id"],
            name=op.f("fk_material_lot_material_id_material_definition"),
        ),
        sa.ForeignKeyConstraint(
            ["produced_by_operation_id"],
            ["job_operation.id"],
            name=op.f("fk_material_lot_produced_by_operation_id_job_operation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_material_lot")),
        sa.UniqueConstraint("code", name=op.f("uq_material_lot_code")),
    )
    with op.batch_alter_table("material_lot", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_material_lot_material_id"), ["material_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_material_lot_produced_by_operation_id"),
            ["produced_by_operation_id"],
            unique=False,
        )

    op.create_table(
        "lot_genealogy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parent_lot_id", sa.Integer(), nullable=False),
        sa.Column("child_lot_id", sa.Integer(), nullable=False),
        sa.Column("job_operation_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_lot_id"],
            ["material_lot.id"],
            name=op.f("fk_lot_genealogy_child_lot_id_material_lot"),
        ),
        sa.ForeignKeyConstraint(
            ["job_operation_id"],
            ["job_operation.id"],
            name=op.f("fk_lot_genealogy_job_operation_id_job_operation"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_lot_id"],
            ["material_lot.id"],
            name=op.f("fk_lot_genealogy_parent_lot_id_material_lot"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_genealogy")),
        sa.UniqueConstraint("parent_lot_id", "child_lot_id", name="uq_lot_edge"),
    )
    with op.batch_alter_table("lot_genealogy", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lot_genealogy_child_lot_id"), ["child_lot_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_lot_genealogy_parent_lot_id"), ["parent_lot_id"], unique=False
        )

    op.create_table(
        "material_consumption",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_operation_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_operation_id"],
            ["job_operation.id"],
            name=op.f("fk_material_consumption_job_operation_id_job_operation"),
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["material_lot.id"],
            name=op.f("fk_material_consumption_lot_id_material_lot"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_material_consumption")),
    )
    with op.batch_alter_table("material_consumption", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_material_consumption_job_operation_id"),
            ["job_operation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_material_consumption_lot_id"), ["lot_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("material_consumption", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_material_consumption_lot_id"))
        batch_op.drop_index(batch_op.f("ix_material_consumption_job_operation_id"))

    op.drop_table("material_consumption")
    with op.batch_alter_table("lot_genealogy", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lot_genealogy_parent_lot_id"))
        batch_op.drop_index(batch_op.f("ix_lot_genealogy_child_lot_id"))

    op.drop_table("lot_genealogy")
    with op.batch_alter_table("material_lot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_material_lot_produced_by_operation_id"))
        batch_op.drop_index(batch_op.f("ix_material_lot_material_id"))

    op.drop_table("material_lot")
    with op.batch_alter_table("job_operation_operator", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_operation_operator_job_operation_id"))

    op.drop_table("job_operation_operator")
    with op.batch_alter_table("segment_material", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_material_segment_id"))

    op.drop_table("segment_material")
    with op.batch_alter_table("job_operation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_operation_work_unit_id"))
        batch_op.drop_index("ix_job_operation_unit_state")
        batch_op.drop_index(batch_op.f("ix_job_operation_job_order_id"))

    op.drop_table("job_operation")
    with op.batch_alter_table("inspection_characteristic", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inspection_characteristic_segment_id"))

    op.drop_table("inspection_characteristic")
    op.drop_table("operations_segment")
    with op.batch_alter_table("job_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_order_state"))

    op.drop_table("job_order")
    op.drop_table("operations_definition")
    with op.batch_alter_table("equipment_state_history", schema=None) as batch_op:
        batch_op.drop_index("ix_equipment_state_history_unit_time")

    op.drop_table("equipment_state_history")
    with op.batch_alter_table("certification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certification_person_id"))

    op.drop_table("certification")
    op.drop_table("auth_token")
    with op.batch_alter_table("plant_event", schema=None) as batch_op:
        batch_op.drop_index("ix_plant_event_unit_kind_ts")

    op.drop_table("plant_event")
    op.drop_table("person")
    op.drop_table("material_definition")
    with op.batch_alter_table("equipment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_equipment_parent_id"))

    op.drop_table("equipment")
    op.drop_table("audit_head")
    op.drop_table("audit_entry")
