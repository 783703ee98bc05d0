"""Rule 5 end to end in the services: results -> nonconformance + holds -> signed disposition.

Runs on SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from mes_quality_factories import QA_PASSWORD, build_cell, characteristic, running_job
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.domain.errors import Forbidden, InvalidInput, RuleViolation
from mes_core.persistence import execution, masterdata, operator_transactions
from mes_core.persistence.models import AuditEntry
from mes_core.persistence.security import SYSTEM, Actor
from mes_core.quality import disposition_service as qd
from mes_core.quality import hold_service as qh
from mes_core.quality import service as qs
from mes_core.quality.models import ElectronicSignature
from mes_core.quality.signature import SignatureManifest, SignatureMeaning, verify_binding
from mes_core.schemas import execution as ex

NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)


def _measure(session: Session, job, value: float, lot=None):  # type: ignore[no-untyped-def]
    op = next(o for o in job.operations if o.sequence == 10)
    out = qs.record_measurement(
        session,
        characteristic=characteristic(job),
        value=value,
        measured_at=NOW,
        job_order=job,
        operation=op,
        lot=lot,
        work_unit=op.work_unit,
        source="api",
        actor=SYSTEM,
    )
    session.commit()
    return out


def test_in_spec_in_control_result_opens_no_nonconformance(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    out = _measure(session, job, 500.4)
    assert out.nonconformance is None
    assert out.result.in_spec
    assert execution.get_job_order(session, job.code).state == "running"


def test_rule5_out_of_spec_result_holds_job_order_and_lot(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    lot = masterdata.get_lot(session, cell.preform_lot)
    out = _measure(session, job, 507.0, lot=lot)
    assert out.nonconformance is not None
    assert out.nonconformance.number.startswith("NC-")
    assert out.nonconformance.source == "out_of_spec"
    assert "value 507 is above USL 505" in out.nonconformance.description
    assert execution.get_job_order(session, job.code).state == "held"
    assert masterdata.get_lot(session, cell.preform_lot).status == "on_hold"


def test_rule5_nothing_held_moves_until_disposed(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    _measure(session, job, 480.0)
    with pytest.raises(RuleViolation) as refused:
        operator_transactions.report_quantities(
            session, job.code, 10, ex.ReportRequest(good=5), actor=SYSTEM
        )
    assert refused.value.rule.value == "HELD"
    with pytest.raises(RuleViolation):
        execution.complete_operation(session, job.code, 10, ex.CompleteRequest(), actor=SYSTEM)


def test_rule5_spc_violation_in_spec_opens_nonconformance(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    qs.set_limits(
        session, characteristic(job), method="baseline", centre=500.0, sigma=0.5, actor=SYSTEM
    )
    session.commit()
    out = _measure(session, job, 501.8)  # in spec (<= 505), beyond 3 sigma (> 501.5)
    assert out.result.in_spec
    assert out.result.spc_rules == "1"
    assert out.nonconformance is not None and out.nonconformance.source == "spc"
    assert "Nelson rule 1" in out.nonconformance.description


def test_spc_limits_are_established_from_the_first_n_in_control_points(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    char = characteristic(job)
    qs.set_limits(session, char, method="first_n", baseline_n=5, actor=SYSTEM)
    session.commit()
    for v in (500.0, 500.4, 499.6, 500.2):
        _measure(session, job, v)
    assert qs.limits_view(session, char).centre is None
    _measure(session, job, 499.8)
    view = qs.limits_view(session, char)
    assert view.centre == pytest.approx(500.0)
    assert view.ucl is not None and view.lcl is not None and view.lcl < 500 < view.ucl


def test_further_deviations_join_the_open_nonconformance(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    first = _measure(session, job, 510.0).nonconformance
    second = _measure(session, job, 511.0).nonconformance
    assert first is not None and second is not None
    assert first.id == second.id


def test_disposition_only_by_quality_role(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    nc = _measure(session, job, 510.0).nonconformance
    assert nc is not None
    operator = masterdata.get_person(session, cell.operator)
    from mes_core.persistence.security import Actor

    actor = Actor(operator.code, frozenset(operator.role_list), operator.id, operator.code)
    with pytest.raises(Forbidden, match="quality role"):
        qd.dispose(
            session,
            nc.number,
            disposition="release",
            password="op-secret-1",
            meaning="approval",
            reason="looks fine to me",
            actor=actor,
        )


def test_disposition_signature_needs_the_password_again_and_records_the_refusal(
    session: Session,
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    nc = _measure(session, job, 510.0).nonconformance
    assert nc is not None
    with pytest.raises(qd.SignatureRefused, match="wrong password"):
        qd.dispose(
            session,
            nc.number,
            disposition="release",
            password="guess",
            meaning="approval",
            reason="Gauge error, retest in spec",
            actor=cell.qa_actor(session),
        )
    refusal = session.execute(
        select(AuditEntry).where(
            AuditEntry.object_ref == f"nonconformance:{nc.number}", AuditEntry.action == "refused"
        )
    ).scalar_one()
    assert "wrong password" in json.loads(refusal.detail)["message"]
    assert qs.get_nonconformance(session, nc.number).state == "open"


def test_disposition_signer_needs_a_valid_certification(session: Session) -> None:
    cell = build_cell(session, lapsed_qa=True)
    job = running_job(session, cell)
    nc = _measure(session, job, 510.0).nonconformance
    assert nc is not None
    with pytest.raises(qd.SignatureRefused, match="expired on"):
        qd.dispose(
            session,
            nc.number,
            disposition="release",
            password=QA_PASSWORD,
            meaning="approval",
            reason="Gauge error, retest in spec",
            actor=cell.qa_actor(session, cell.qa_uncertified),
        )


def test_signed_release_restores_job_order_and_lot_and_binds_the_signature(
    session: Session,
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    lot = masterdata.get_lot(session, cell.preform_lot)
    nc = _measure(session, job, 510.0, lot=lot).nonconformance
    assert nc is not None
    nc, sig = qd.dispose(
        session,
        nc.number,
        disposition="release",
        password=QA_PASSWORD,
        meaning="approval",
        reason="Gauge error, retest in spec",
        actor=cell.qa_actor(session),
    )
    session.commit()
    assert nc.state == "disposed" and nc.disposition == "release"
    assert execution.get_job_order(session, job.code).state == "running"
    assert masterdata.get_lot(session, cell.preform_lot).status == "available"
    row = session.get_one(ElectronicSignature, sig.id)
    assert row.printed_name == "Maria Quality"
    assert row.meaning == "approval"
    manifest = SignatureManifest(
        signer=row.signer,
        printed_name=row.printed_name,
        signed_at=row.signed_at,
        meaning=SignatureMeaning(row.meaning),
        reason=row.reason,
        record_ref=row.record_ref,
        record_hash=row.record_hash,
    )
    assert verify_binding(manifest, json.loads(row.record_json), row.binding_hash)
    entry = session.execute(
        select(AuditEntry).where(
            AuditEntry.object_ref == f"nonconformance:{nc.number}",
            AuditEntry.action == "nonconformance.disposed",
        )
    ).scalar_one()
    assert "Signed by Maria Quality" in json.loads(entry.detail)["signature"]
    # The job order moves again.
    operator_transactions.report_quantities(
        session, job.code, 10, ex.ReportRequest(good=5), actor=SYSTEM
    )


def test_signed_scrap_rejects_the_lot(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    lot = masterdata.get_lot(session, cell.preform_lot)
    nc = _measure(session, job, 480.0, lot=lot).nonconformance
    assert nc is not None
    qd.dispose(
        session,
        nc.number,
        disposition="scrap",
        password=QA_PASSWORD,
        meaning="responsibility",
        reason="Underfilled bottles destroyed",
        quantity=120,
        actor=cell.qa_actor(session),
    )
    session.commit()
    assert masterdata.get_lot(session, cell.preform_lot).status == "rejected"
    assert execution.get_job_order(session, job.code).state == "running"


def test_a_disposed_nonconformance_cannot_be_signed_again(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    nc = _measure(session, job, 480.0).nonconformance
    assert nc is not None
    kwargs = {
        "disposition": "rework",
        "password": QA_PASSWORD,
        "meaning": "approval",
        "reason": "Refill the affected bottles",
        "actor": cell.qa_actor(session),
    }
    qd.dispose(session, nc.number, **kwargs)  # type: ignore[arg-type]
    session.commit()
    with pytest.raises(InvalidInput, match="already disposed"):
        qd.dispose(session, nc.number, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ holds have owners

SUPERVISOR = Actor("sup-holds", frozenset({"supervisor"}))


def _release(session: Session, cell, number: str):  # type: ignore[no-untyped-def]
    out = qd.dispose(
        session,
        number,
        disposition="release",
        password=QA_PASSWORD,
        meaning="approval",
        reason="Gauge error, retest in spec",
        actor=cell.qa_actor(session),
    )
    session.commit()
    return out


def test_a_disposition_lifts_only_the_holds_its_nonconformance_placed(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    qh.hold_job_order_by_hand(session, job.code, "line clearance not signed", actor=SUPERVISOR)
    qh.hold_lot_by_hand(session, cell.preform_lot, "supplier CoA missing", actor=SUPERVISOR)
    session.commit()
    lot = masterdata.get_lot(session, cell.preform_lot)
    nc = _measure(session, job, 510.0, lot=lot).nonconformance
    assert nc is not None
    _release(session, cell, nc.number)
    # The supervisor's holds are still there: nothing moves.
    assert execution.get_job_order(session, job.code).state == "held"
    assert masterdata.get_lot(session, cell.preform_lot).status == "on_hold"
    with pytest.raises(RuleViolation) as refused:
        operator_transactions.report_quantities(
            session, job.code, 10, ex.ReportRequest(good=5), actor=SYSTEM
        )
    assert refused.value.rule.value == "HELD"
    kept = session.execute(
        select(AuditEntry).where(
            AuditEntry.object_ref == f"job_order:{job.code}", AuditEntry.action == "hold.lifted"
        )
    ).scalar_one()
    assert json.loads(kept.detail) == {
        "owner": nc.number,
        "reason": f"{nc.number} disposed: release",
        "still_held_by": ["by hand"],
    }
    # The supervisor's release lifts them; the job order resumes where it was.
    qh.release_job_order_hold_by_hand(session, job.code, "line clearance signed", actor=SUPERVISOR)
    qh.release_lot_by_hand(session, cell.preform_lot, "CoA received", actor=SUPERVISOR)
    session.commit()
    assert execution.get_job_order(session, job.code).state == "running"
    assert masterdata.get_lot(session, cell.preform_lot).status == "available"


def test_a_hold_by_hand_is_not_lifted_by_a_release_while_a_nonconformance_holds(
    session: Session,
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    lot = masterdata.get_lot(session, cell.preform_lot)
    nc = _measure(session, job, 510.0, lot=lot).nonconformance
    assert nc is not None
    # A release by hand cannot lift a nonconformance's hold: that needs QA's signature.
    with pytest.raises(RuleViolation) as refused:
        qh.release_job_order_hold_by_hand(session, job.code, "looks fine", actor=SUPERVISOR)
    assert refused.value.rule.value == "HELD"
    assert nc.number in refused.value.message
    with pytest.raises(RuleViolation):
        qh.release_lot_by_hand(session, cell.preform_lot, "looks fine", actor=SUPERVISOR)
    recorded = session.execute(
        select(AuditEntry).where(
            AuditEntry.object_ref == f"job_order:{job.code}", AuditEntry.action == "refused"
        )
    ).scalar_one()
    assert json.loads(recorded.detail)["rule"] == "HELD"
    assert execution.get_job_order(session, job.code).state == "held"
    # A supervisor holds the held job order as well; the disposition then leaves it held.
    qh.hold_job_order_by_hand(session, job.code, "pending investigation", actor=SUPERVISOR)
    session.commit()
    _release(session, cell, nc.number)
    assert execution.get_job_order(session, job.code).state == "held"
    assert masterdata.get_lot(session, cell.preform_lot).status == "available"
    qh.release_job_order_hold_by_hand(session, job.code, "investigation closed", actor=SUPERVISOR)
    session.commit()
    assert execution.get_job_order(session, job.code).state == "running"
