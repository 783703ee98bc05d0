"""The signed disposition of a nonconformance (release, rework, scrap): QA's decision,
under an electronic signature (21 CFR Part 11), that lifts the holds the nonconformance
placed (enforcement rule 5; the effects are the pure rules of
:mod:`mes_core.quality.disposition`, the signature's those of
:mod:`mes_core.quality.signature`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.domain import clock, rules
from mes_core.domain.errors import (
    Forbidden,
    InvalidInput,
    MesError,
    NotAuthenticated,
    RuleViolation,
)
from mes_core.domain.states import JobOrderState, LotStatus, Role
from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.execution import get_job_order, release_job_order_hold, release_lot
from mes_core.persistence.masterdata import get_lot, get_person
from mes_core.persistence.models import JobOrder, MaterialLot
from mes_core.persistence.security import Actor, verify_password
from mes_core.quality import disposition as dz
from mes_core.quality.hold_service import audit_lifted, held_objects, holds_of, open_holds_on
from mes_core.quality.models import ElectronicSignature, MeasurementResult, Nonconformance
from mes_core.quality.service import get_nonconformance
from mes_core.quality.signature import SignatureError, SignatureManifest, check_request, record_hash

#: The skill a signer needs a valid certification for to dispose a nonconformance
#: (rule 3 applied at signing); the shipped plant models certify QA people for it.
DISPOSITION_SKILL = "qa_release"


class SignatureRefused(MesError):
    """The signature could not be applied (wrong password, missing certification...)."""

    status_code = 403
    code = "SIGNATURE_REFUSED"


def _record_of(
    session: Session, nc: Nonconformance, disposition: str, quantity: float | None
) -> dict[str, Any]:
    """The content the signature binds: the nonconformance and what the disposition does."""
    held = held_objects(session, nc)
    return {
        "nonconformance": nc.number,
        "description": nc.description,
        "source": nc.source,
        "opened_at": nc.opened_at.isoformat(),
        "opened_by": nc.opened_by,
        "disposition": disposition,
        "quantity": quantity,
        "lots": held["lots"],
        "job_orders": held["job_orders"],
        "measurements": [
            m
            for m in session.execute(
                select(MeasurementResult.id)
                .where(MeasurementResult.nonconformance_id == nc.id)
                .order_by(MeasurementResult.id)
            )
            .scalars()
            .all()
        ],
    }


def dispose(
    session: Session,
    number: str,
    *,
    disposition: str,
    password: str,
    meaning: str,
    reason: str,
    quantity: float | None = None,
    occurred_at: datetime | None = None,
    actor: Actor,
) -> tuple[Nonconformance, ElectronicSignature]:
    """Dispose a nonconformance (release, rework, scrap) under an electronic signature.

    Only the quality role; the signer re-enters the password (21 CFR 11.200(a)(1)(i)) and
    must hold a valid certification for ``DISPOSITION_SKILL`` (rule 3 at signing). Every
    refusal is recorded in the audit trail. ``occurred_at``: when it was signed, for a
    signer allowed to backdate (:mod:`mes_core.domain.clock`); the certification is judged
    then, and the signature and the lifted holds carry that time.
    """
    nc = get_nonconformance(session, number)
    ref = f"nonconformance:{number}"
    try:
        when = clock.business_time(
            occurred_at, now=utcnow(), actor=actor.name, roles=actor.roles, object_ref=ref
        )
    except Forbidden as exc:
        _refuse(session, actor, ref, exc.message)
        raise
    try:
        kind = dz.Disposition(disposition)
    except ValueError as exc:
        raise InvalidInput(
            f"disposition {disposition!r} is not one of release, rework, scrap", object_ref=ref
        ) from exc
    if Role.QUALITY.value not in actor.roles or actor.person_code is None:
        _refuse(session, actor, ref, "only a person with the quality role may dispose")
        raise Forbidden("only a person with the quality role may dispose", object_ref=ref)
    try:
        parsed_meaning = check_request(meaning, reason)
        dz.check_can_dispose(nc.state, number)
    except (SignatureError, dz.DispositionError) as exc:
        raise InvalidInput(str(exc), object_ref=ref) from exc
    try:
        signer = verify_password(session, person=actor.person_code, password=password)
    except NotAuthenticated as exc:
        _refuse(session, actor, ref, "signature refused: wrong password")
        raise SignatureRefused("signature refused: wrong password", object_ref=ref) from exc
    person = get_person(session, signer.code)
    try:
        rules.check_certification(
            person.code,
            DISPOSITION_SKILL,
            [rules.CertificationFacts(c.skill, c.valid_until) for c in person.certifications],
            today=when.date(),
            action="sign a disposition",
        )
    except RuleViolation as exc:
        _refuse(session, actor, ref, exc.message)
        raise SignatureRefused(exc.message, object_ref=f"person:{person.code}") from exc

    record = _record_of(session, nc, kind.value, quantity)
    manifest = SignatureManifest(
        signer=person.code,
        printed_name=person.name or person.code,
        signed_at=when,
        meaning=parsed_meaning,
        reason=reason.strip(),
        record_ref=ref,
        record_hash=record_hash(record),
    )
    signature = ElectronicSignature(
        signer_id=person.id,
        signer=manifest.signer,
        printed_name=manifest.printed_name,
        signed_at=manifest.signed_at,
        meaning=manifest.meaning.value,
        reason=manifest.reason,
        record_ref=ref,
        record_hash=manifest.record_hash,
        record_json=json.dumps(record, sort_keys=True),
        binding_hash=manifest.binding_hash(),
    )
    session.add(signature)
    session.flush()
    nc.state = dz.NonconformanceState.DISPOSED.value
    nc.disposition = kind.value
    nc.quantity = quantity
    nc.disposed_at = manifest.signed_at
    nc.signature_id = signature.id
    _release_holds(session, nc, kind, actor=actor, at=when)
    audit.append(
        session,
        actor=actor.name,
        action="nonconformance.disposed",
        object_ref=ref,
        detail={
            "disposition": kind.value,
            "quantity": quantity,
            "signature": manifest.display(),
            "meaning": manifest.meaning.value,
            "reason": manifest.reason,
            "record_hash": manifest.record_hash,
            "binding_hash": signature.binding_hash,
            **({"occurred_at": when.isoformat()} if occurred_at is not None else {}),
        },
    )
    session.flush()
    return nc, signature


def _refuse(session: Session, actor: Actor, ref: str, message: str) -> None:
    """Record a refused disposition in its own committed transaction (it must survive the
    rollback of the refused request)."""
    session.rollback()
    audit.append(
        session,
        actor=actor.name,
        action="refused",
        object_ref=ref,
        detail={"rule": "SIGNATURE", "message": message, "attempted": "dispose"},
    )
    session.commit()


def _release_holds(
    session: Session, nc: Nonconformance, kind: dz.Disposition, *, actor: Actor, at: datetime
) -> None:
    """Lift the holds this nonconformance placed, and only those: a lot or job order that
    another hold (by hand, or another nonconformance's) still holds stays held."""
    now = at
    reason = f"{nc.number} disposed: {kind.value}"
    for hold in holds_of(session, nc):
        if hold.released_at is None:
            hold.released_at = now
            hold.released_by = actor.name
            hold.release_reason = reason
    session.flush()
    for hold in holds_of(session, nc):
        if hold.object_kind == "lot":
            lot = get_lot(
                session, session.get_one(MaterialLot, hold.object_id).code, for_update=True
            )
            remaining = open_holds_on(session, "lot", lot.id)
            audit_lifted(session, actor, f"material_lot:{lot.code}", nc.number, reason, remaining)
            if lot.status == LotStatus.CONSUMED.value or (
                lot.status != LotStatus.ON_HOLD.value and kind != dz.Disposition.SCRAP
            ):
                continue
            target = dz.lot_status_after(kind, lot.status_before_hold, bool(remaining))
            if target != LotStatus.ON_HOLD:
                release_lot(session, lot.code, reason, actor=actor, status=target)
        else:
            code = session.get_one(JobOrder, hold.object_id).code
            job = get_job_order(session, code, for_update=True)
            remaining = open_holds_on(session, "job_order", job.id)
            audit_lifted(session, actor, f"job_order:{code}", nc.number, reason, remaining)
            if not remaining and job.state == JobOrderState.HELD.value:
                release_job_order_hold(session, job.code, reason, actor=actor)


def signature_of(session: Session, nc: Nonconformance) -> ElectronicSignature | None:
    if nc.signature_id is None:
        return None
    return session.get(ElectronicSignature, nc.signature_id)
