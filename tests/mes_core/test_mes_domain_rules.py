"""The enforcement rules as plain Python: no database, no server (PRODUCT.md rules 1-5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mes_core.domain import rules
from mes_core.domain.errors import Rule, RuleViolation
from mes_core.domain.states import EquipmentState, JobOrderState, LotStatus, OperationState

TODAY = date(2026, 6, 1)
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def op(seq: int, state: OperationState, good: float = 0) -> rules.OperationFacts:
    return rules.OperationFacts(sequence=seq, name=f"op{seq}", state=state, good=good)


def lot(**kw: object) -> rules.LotFacts:
    base: dict[str, object] = {
        "code": "L1",
        "material": "BOTTLE",
        "status": LotStatus.AVAILABLE,
        "quantity": 10.0,
    }
    base.update(kw)
    return rules.LotFacts(**base)  # type: ignore[arg-type]


def unit(**kw: object) -> rules.WorkUnitFacts:
    base: dict[str, object] = {
        "code": "FILL1",
        "equipment_class": "Filler",
        "state": EquipmentState.IDLE,
        "qualified": True,
        "qualification_due": None,
        "calibration_due": TODAY,
    }
    base.update(kw)
    return rules.WorkUnitFacts(**base)  # type: ignore[arg-type]


# ---------------------------------------------------------------- rule 1


def test_operation_cannot_start_before_predecessor_complete() -> None:
    with pytest.raises(RuleViolation) as exc:
        rules.check_predecessors(
            op(2, OperationState.PENDING),
            [op(1, OperationState.RUNNING, good=5)],
            allow_partial=False,
            job_order="JO1",
        )
    assert exc.value.rule == Rule.SEQUENCE
    assert "JO1" in exc.value.message and "op1" in exc.value.message


def test_operation_may_start_after_predecessors_complete() -> None:
    rules.check_predecessors(
        op(3, OperationState.PENDING),
        [op(1, OperationState.COMPLETED), op(2, OperationState.COMPLETED)],
        allow_partial=False,
        job_order="JO1",
    )


def test_partial_quantities_allow_start_when_routing_says_so() -> None:
    rules.check_predecessors(
        op(2, OperationState.PENDING),
        [op(1, OperationState.RUNNING, good=1)],
        allow_partial=True,
        job_order="JO1",
    )


def test_partial_start_still_needs_good_units_from_predecessor() -> None:
    with pytest.raises(RuleViolation) as exc:
        rules.check_predecessors(
            op(2, OperationState.PENDING),
            [op(1, OperationState.RUNNING, good=0)],
            allow_partial=True,
            job_order="JO1",
        )
    assert exc.value.rule == Rule.SEQUENCE


# ---------------------------------------------------------------- rule 2


def _consume(
    facts: rules.LotFacts, quantity: float = 1.0, bom: tuple[str, ...] = ("BOTTLE",)
) -> None:
    rules.check_lot_consumable(
        facts, bom_materials=bom, quantity=quantity, now=NOW, operation_ref="op 1 of JO1"
    )


def test_lot_consumable_only_if_material_on_bom() -> None:
    with pytest.raises(RuleViolation) as exc:
        _consume(lot(material="CAP"))
    assert exc.value.rule == Rule.MATERIAL_NOT_ON_BOM


@pytest.mark.parametrize("status", [LotStatus.QUARANTINE, LotStatus.CONSUMED, LotStatus.REJECTED])
def test_lot_consumable_only_if_available(status: LotStatus) -> None:
    with pytest.raises(RuleViolation) as exc:
        _consume(lot(status=status))
    assert exc.value.rule == Rule.LOT_NOT_AVAILABLE


def test_lot_on_hold_is_refused_as_held() -> None:
    with pytest.raises(RuleViolation) as exc:
        _consume(lot(status=LotStatus.ON_HOLD))
    assert exc.value.rule == Rule.HELD


def test_expired_lot_cannot_be_consumed() -> None:
    with pytest.raises(RuleViolation) as exc:
        _consume(lot(expires_at=NOW - timedelta(seconds=1)))
    assert exc.value.rule == Rule.LOT_EXPIRED


def test_lot_quantity_must_suffice() -> None:
    with pytest.raises(RuleViolation) as exc:
        _consume(lot(quantity=2.0), quantity=3.0)
    assert exc.value.rule == Rule.LOT_QUANTITY
    _consume(lot(quantity=3.0), quantity=3.0)
    _consume(lot(status=LotStatus.RELEASED))


# ---------------------------------------------------------------- rule 3


def test_operator_needs_certification_for_skill() -> None:
    with pytest.raises(RuleViolation) as exc:
        rules.check_certification("op1", "filling", [], today=TODAY)
    assert exc.value.rule == Rule.CERTIFICATION


def test_operator_with_expired_certification_cannot_start() -> None:
    certs = [rules.CertificationFacts("filling", TODAY - timedelta(days=1))]
    with pytest.raises(RuleViolation) as exc:
        rules.check_certification("op1", "filling", certs, today=TODAY)
    assert "expired" in exc.value.message


def test_operator_with_valid_certification_may_start() -> None:
    certs = [
        rules.CertificationFacts("filling", TODAY - timedelta(days=400)),
        rules.CertificationFacts("filling", TODAY),
    ]
    rules.check_certification("op1", "filling", certs, today=TODAY)
    rules.check_certification("op1", None, [], today=TODAY)


def test_segment_needing_skill_needs_a_named_operator() -> None:
    with pytest.raises(RuleViolation) as exc:
        rules.check_operators_named("filling", {})
    assert exc.value.rule == Rule.CERTIFICATION


# ---------------------------------------------------------------- rule 4


def test_work_unit_must_be_of_required_class() -> None:
    with pytest.raises(RuleViolation) as exc:
        rules.check_work_unit(unit(equipment_class="Capper"), required_class="Filler", today=TODAY)
    assert exc.value.rule == Rule.EQUIPMENT_CLASS


def test_work_unit_must_be_qualified() -> None:
    for facts in (unit(qualified=False), unit(qualification_due=TODAY - timedelta(days=1))):
        with pytest.raises(RuleViolation) as exc:
            rules.check_work_unit(facts, required_class="Filler", today=TODAY)
        assert exc.value.rule == Rule.EQUIPMENT_NOT_QUALIFIED


def test_work_unit_must_be_in_calibration() -> None:
    with pytest.raises(RuleViolation) as exc:
        rules.check_work_unit(
            unit(calibration_due=TODAY - timedelta(days=1)), required_class="Filler", today=TODAY
        )
    assert exc.value.rule == Rule.CALIBRATION_DUE


@pytest.mark.parametrize("state", [EquipmentState.DOWN, EquipmentState.MAINTENANCE])
def test_work_unit_must_not_be_down(state: EquipmentState) -> None:
    with pytest.raises(RuleViolation) as exc:
        rules.check_work_unit(unit(state=state), required_class="Filler", today=TODAY)
    assert exc.value.rule == Rule.EQUIPMENT_DOWN


def test_qualified_calibrated_idle_work_unit_of_right_class_is_accepted() -> None:
    rules.check_work_unit(unit(), required_class="Filler", today=TODAY)


# ---------------------------------------------------------------- rule 5 and life cycle


def test_nothing_on_hold_moves() -> None:
    with pytest.raises(RuleViolation) as exc:
        rules.check_job_order_not_held("JO1", JobOrderState.HELD)
    assert exc.value.rule == Rule.HELD
    with pytest.raises(RuleViolation) as exc:
        rules.next_job_order_state("JO1", JobOrderState.HELD, "start")
    assert exc.value.rule == Rule.HELD


def test_job_order_life_cycle_follows_isa95_states() -> None:
    state = JobOrderState.PLANNED
    for action, expected in [
        ("release", JobOrderState.RELEASED),
        ("dispatch", JobOrderState.DISPATCHED),
        ("start", JobOrderState.RUNNING),
        ("complete", JobOrderState.COMPLETED),
        ("close", JobOrderState.CLOSED),
    ]:
        state = rules.next_job_order_state("JO1", state, action)
        assert state == expected
    with pytest.raises(RuleViolation) as exc:
        rules.next_job_order_state("JO1", JobOrderState.PLANNED, "dispatch")
    assert exc.value.rule == Rule.INVALID_TRANSITION
