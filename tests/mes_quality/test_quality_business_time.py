"""Which clock quality records take (issue 13, mes_core.domain.clock), in the services on
SQLite and PostgreSQL: a nonconformance and its holds date from the deviating result's
measurement (plant time for a plant event), a signature from the stated business time of
a signer allowed to backdate, judged then. (~2 s per backend.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from mes_quality_factories import QA_PASSWORD, Cell, build_cell, characteristic, running_job
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.domain.errors import Forbidden
from mes_core.persistence import masterdata
from mes_core.persistence.models import AuditEntry
from mes_core.persistence.security import SYSTEM, Actor
from mes_core.quality import disposition_service as qd
from mes_core.quality import hold_service as qh
from mes_core.quality import service as qs
from mes_core.quality.models import Nonconformance

PLANT_T = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)  # a plant months behind the wall clock


def _deviation(session: Session, cell: Cell) -> Nonconformance:
    job = running_job(session, cell)
    op = next(o for o in job.operations if o.sequence == 10)
    out = qs.record_measurement(
        session,
        characteristic=characteristic(job),
        value=510.0,
        measured_at=PLANT_T,
        job_order=job,
        operation=op,
        lot=masterdata.get_lot(session, cell.preform_lot),
        work_unit=op.work_unit,
        source="plant",
        actor=SYSTEM,
    )
    session.commit()
    assert out.nonconformance is not None
    return out.nonconformance


def _backdating(session: Session, code: str) -> Actor:
    person = masterdata.get_person(session, code)
    return Actor(person.code, frozenset({*person.role_list, "backdate"}), person.id, person.code)


def test_a_nonconformance_and_its_holds_date_from_the_measurement(session: Session) -> None:
    nc = _deviation(session, build_cell(session))
    assert nc.opened_at == PLANT_T
    assert {h.placed_at for h in qh.holds_of(session, nc)} == {PLANT_T}


def test_a_signature_takes_the_stated_time_of_a_signer_allowed_to_backdate(
    session: Session,
) -> None:
    """The QA whose certification lapsed yesterday signs at plant time, when it was valid;
    the signature, the disposition and the lifted holds carry that time."""
    cell = build_cell(session, lapsed_qa=True)
    nc = _deviation(session, cell)
    signed = PLANT_T + timedelta(hours=2)
    disposed, signature = qd.dispose(
        session,
        nc.number,
        disposition="release",
        password=QA_PASSWORD,
        meaning="approval",
        reason="Gauge error, retest in spec",
        occurred_at=signed,
        actor=_backdating(session, cell.qa_uncertified),
    )
    session.commit()
    assert (signature.signed_at, disposed.disposed_at) == (signed, signed)
    assert {h.released_at for h in qh.holds_of(session, disposed)} == {signed}


def test_a_stated_signing_time_without_the_backdate_permission_is_refused_and_recorded(
    session: Session,
) -> None:
    cell = build_cell(session)
    nc = _deviation(session, cell)
    with pytest.raises(Forbidden, match="may not state when"):
        qd.dispose(
            session,
            nc.number,
            disposition="release",
            password=QA_PASSWORD,
            meaning="approval",
            reason="Gauge error, retest in spec",
            occurred_at=PLANT_T + timedelta(hours=2),
            actor=cell.qa_actor(session),
        )
    refused = session.execute(
        select(AuditEntry).where(
            AuditEntry.object_ref == f"nonconformance:{nc.number}", AuditEntry.action == "refused"
        )
    ).scalar_one()
    assert "may not state when" in refused.detail
    assert qs.get_nonconformance(session, nc.number).state == "open"


def test_labour_is_booked_at_the_stated_plant_time_and_counts_those_hours(
    session: Session,
) -> None:
    from mes_core.labour import service as labour

    cell = build_cell(session)
    job = running_job(session, cell)
    person = masterdata.get_person(session, cell.operator)
    actor = _backdating(session, cell.operator)
    at = [PLANT_T + timedelta(hours=h) for h in (0, 1, 3, 8)]
    attendance = labour.clock_in(session, person, actor=actor, occurred_at=at[0])
    booking = labour.start_labour(session, job.code, 10, person, actor=actor, occurred_at=at[1])
    labour.stop_labour(session, job.code, 10, person, actor=actor, occurred_at=at[2])
    labour.clock_out(session, person, actor=actor, occurred_at=at[3])
    session.commit()
    assert (attendance.clock_in, attendance.clock_out) == (at[0], at[3])
    assert (booking.started_at, booking.ended_at) == (at[1], at[2])
    assert labour.job_order_labour(session, job.code).hours == pytest.approx(2.0)
    with pytest.raises(Forbidden, match="may not state when"):
        labour.clock_in(
            session,
            person,
            actor=Actor(person.code, frozenset(person.role_list), person.id, person.code),
            occurred_at=at[3],
        )
