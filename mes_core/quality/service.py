"""Quality services: measurement results, SPC, nonconformances, holds, signed dispositions.

Keyword-only functions over a session; they flush but never commit (the caller's
transaction decides) and append an audit entry for every change. The decisions are the
pure rules of :mod:`mes_core.quality.spc`, :mod:`~mes_core.quality.inspection`,
:mod:`~mes_core.quality.disposition` and :mod:`~mes_core.quality.signature`.

Enforcement rule 5 (PRODUCT.md): a result out of specification or violating an SPC rule
opens a nonconformance and holds the affected lot(s) and the job order; the execution
core refuses to move anything held; only QA disposes it, with an electronic signature.
While a nonconformance on the same characteristic and job order is open, further deviating
results join it (and hold any new lot) instead of opening one nonconformance per sample.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
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
    NotFound,
    RuleViolation,
)
from mes_core.domain.states import JobOrderState, LotStatus, Role
from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.execution import (
    get_job_order,
    hold_job_order,
    hold_lot,
    release_job_order_hold,
    release_lot,
    running_operation_at,
)
from mes_core.persistence.masterdata import get_lot, get_person
from mes_core.persistence.models import (
    Equipment,
    InspectionCharacteristic,
    JobOperation,
    JobOrder,
    MaterialLot,
    OperationsSegment,
)
from mes_core.persistence.refusals import record_refusal
from mes_core.persistence.security import Actor, verify_password
from mes_core.quality import disposition as dz
from mes_core.quality.holds import (
    BY_HAND,
    OpenHold,
    holds_lifted_by_hand_release,
    stays_held,
)
from mes_core.quality.inspection import Verdict, judge
from mes_core.quality.models import (
    ElectronicSignature,
    MeasurementResult,
    Nonconformance,
    QualityHold,
    SpcLimits,
)
from mes_core.quality.signature import (
    SignatureError,
    SignatureManifest,
    check_request,
    record_hash,
)
from mes_core.quality.spc import (
    RUN_LENGTH,
    ControlLimits,
    SpcError,
    SpecLimits,
    limits_from_first_in_control,
)

#: Without a configured baseline, limits come from the first N in-control points.
DEFAULT_BASELINE_N = 20

#: The skill a signer needs a valid certification for to dispose a nonconformance
#: (rule 3 applied at signing); the shipped plant models certify QA people for it.
DISPOSITION_SKILL = "qa_release"

#: Job order states from which a hold may be placed (the life cycle of the execution core).
_HOLDABLE = frozenset(
    {
        JobOrderState.PLANNED,
        JobOrderState.RELEASED,
        JobOrderState.DISPATCHED,
        JobOrderState.RUNNING,
        JobOrderState.COMPLETED,
    }
)
_HISTORY = max(RUN_LENGTH.values()) - 1


class SignatureRefused(MesError):
    """The signature could not be applied (wrong password, missing certification...)."""

    status_code = 403
    code = "SIGNATURE_REFUSED"


# ------------------------------------------------------------------ characteristics


def get_characteristic(session: Session, characteristic_id: int) -> InspectionCharacteristic:
    row = session.get(InspectionCharacteristic, characteristic_id)
    if row is None:
        raise NotFound("inspection characteristic", str(characteristic_id))
    return row


def resolve_characteristic(
    session: Session,
    name: str,
    *,
    job_order: JobOrder | None,
    sequence: int | None = None,
    work_unit: Equipment | None = None,
) -> tuple[InspectionCharacteristic, JobOrder | None, JobOperation | None]:
    """Find the characteristic ``name`` measured in an operation.

    With a job order and an operation sequence, that operation's segment; with a job order
    and a work unit, the job order's operation on that unit; with only a work unit, the
    operation running there now.
    """
    operation: JobOperation | None = None
    if job_order is not None and sequence is not None:
        operation = next((o for o in job_order.operations if o.sequence == sequence), None)
        if operation is None:
            raise NotFound("operation", f"{job_order.code}/{sequence}")
    elif job_order is not None and work_unit is not None:
        candidates = [o for o in job_order.operations if o.work_unit_id == work_unit.id]
        running = [o for o in candidates if o.state == "running"]
        chosen = running or candidates
        operation = chosen[0] if chosen else None
    elif work_unit is not None:
        operation = running_operation_at(session, work_unit.id)
        if operation is not None:
            job_order = operation.job_order
    if operation is not None:
        segments: Sequence[OperationsSegment] = [operation.segment]
    elif job_order is not None:
        segments = job_order.definition.segments
    else:
        segments = []
    found = [c for s in segments for c in s.characteristics if c.name == name]
    if not found:
        where = f"job order {job_order.code}" if job_order is not None else "no job order running"
        if work_unit is not None:
            where += f" at work unit {work_unit.code}"
        raise NotFound("inspection characteristic", f"{name} ({where})")
    if len(found) > 1 and operation is None:
        raise InvalidInput(
            f"characteristic {name!r} exists in several operations of job order "
            f"{job_order.code if job_order else '-'}; name the operation",
            object_ref=f"characteristic:{name}",
        )
    return found[0], job_order, operation


# ------------------------------------------------------------------ SPC limits


@dataclass(frozen=True)
class LimitsView:
    """Control limits of a characteristic as the API shows them."""

    characteristic_id: int
    method: str
    baseline_n: int
    centre: float | None
    sigma: float | None
    ucl: float | None
    lcl: float | None
    established_at: datetime | None


def _limits_row(session: Session, characteristic_id: int) -> SpcLimits | None:
    return session.execute(
        select(SpcLimits).where(SpcLimits.characteristic_id == characteristic_id)
    ).scalar_one_or_none()


def limits_view(session: Session, characteristic: InspectionCharacteristic) -> LimitsView:
    row = _limits_row(session, characteristic.id)
    if row is None:
        return LimitsView(characteristic.id, "first_n", DEFAULT_BASELINE_N, *(None,) * 5)
    ucl = lcl = None
    if row.centre is not None and row.sigma is not None:
        limits = ControlLimits(row.centre, row.sigma)
        ucl, lcl = limits.ucl, limits.lcl
    return LimitsView(
        characteristic.id,
        row.method,
        row.baseline_n,
        row.centre,
        row.sigma,
        ucl,
        lcl,
        row.established_at,
    )


def set_limits(
    session: Session,
    characteristic: InspectionCharacteristic,
    *,
    method: str,
    centre: float | None = None,
    sigma: float | None = None,
    baseline_n: int = DEFAULT_BASELINE_N,
    actor: Actor,
) -> LimitsView:
    """Set a characteristic's control limits: ``baseline`` (user-set centre and sigma) or
    ``first_n`` (estimated from the next ``baseline_n`` in-control results)."""
    if method == "baseline":
        if centre is None or sigma is None:
            raise InvalidInput("a baseline needs centre and sigma", object_ref="spc_limits")
        try:
            ControlLimits(centre, sigma)
        except SpcError as exc:
            raise InvalidInput(str(exc), object_ref="spc_limits") from exc
    elif method == "first_n":
        if baseline_n < 2:
            raise InvalidInput("baseline_n must be at least 2", object_ref="spc_limits")
        centre = sigma = None
    else:
        raise InvalidInput(f"unknown method {method!r}", object_ref="spc_limits")
    row = _limits_row(session, characteristic.id) or SpcLimits(characteristic_id=characteristic.id)
    row.method, row.baseline_n, row.centre, row.sigma = method, baseline_n, centre, sigma
    row.established_at = utcnow() if method == "baseline" else None
    row.set_by, row.set_at = actor.name, utcnow()
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="quality.spc_limits_set",
        object_ref=f"characteristic:{characteristic.id}",
        detail={"method": method, "centre": centre, "sigma": sigma, "baseline_n": baseline_n},
    )
    return limits_view(session, characteristic)


@dataclass
class SpcTrack:
    """What SPC needs to judge the next result of one characteristic: its limits (once
    known), the latest results, and while no limits exist the results so far (to estimate
    them). Batch ingest keeps one per characteristic for the whole batch instead of reading
    them back per event."""

    limits: ControlLimits | None
    baseline_n: int
    history: list[float]
    baseline_values: list[float]


def load_track(session: Session, characteristic: InspectionCharacteristic) -> SpcTrack:
    row = _limits_row(session, characteristic.id)
    limits = None
    if row is not None and row.centre is not None and row.sigma is not None:
        limits = ControlLimits(row.centre, row.sigma)
    n = row.baseline_n if row is not None else DEFAULT_BASELINE_N
    values = select(MeasurementResult.value).where(
        MeasurementResult.characteristic_id == characteristic.id
    )
    history = list(
        reversed(
            session.execute(values.order_by(MeasurementResult.id.desc()).limit(_HISTORY))
            .scalars()
            .all()
        )
    )
    baseline: list[float] = []
    if limits is None:
        baseline = list(
            session.execute(values.order_by(MeasurementResult.id).limit(5 * n)).scalars().all()
        )
    return SpcTrack(limits, n, history, baseline)


def _advance(
    session: Session,
    characteristic: InspectionCharacteristic,
    track: SpcTrack,
    spec: SpecLimits,
    value: float,
) -> tuple[ControlLimits | None, bool]:
    """The limits to judge ``value`` by, and whether they were established just now (then
    ``value`` belongs to the baseline and is not judged by the run rules)."""
    if track.limits is not None:
        return track.limits, False
    candidates = [*track.baseline_values, value]
    limits = limits_from_first_in_control(candidates, track.baseline_n, spec)
    if limits is None:
        if len(track.baseline_values) < 5 * track.baseline_n:
            track.baseline_values.append(value)
        return None, False
    row = _limits_row(session, characteristic.id)
    if row is None:
        row = SpcLimits(
            characteristic_id=characteristic.id, method="first_n", baseline_n=track.baseline_n
        )
        session.add(row)
    row.centre, row.sigma, row.established_at = limits.centre, limits.sigma, utcnow()
    session.flush()
    audit.append(
        session,
        actor="system",
        action="quality.spc_limits_established",
        object_ref=f"characteristic:{characteristic.id}",
        detail={"centre": limits.centre, "sigma": limits.sigma, "points": track.baseline_n},
    )
    track.limits, track.baseline_values = limits, []
    return limits, True


# ------------------------------------------------------------------ measurements


@dataclass(frozen=True)
class MeasurementOutcome:
    result: MeasurementResult
    verdict: Verdict
    nonconformance: Nonconformance | None


def record_measurement(
    session: Session,
    *,
    characteristic: InspectionCharacteristic,
    value: float,
    measured_at: datetime,
    job_order: JobOrder | None,
    operation: JobOperation | None,
    lot: MaterialLot | None,
    work_unit: Equipment | None,
    unit: str = "",
    source: str,
    actor: Actor,
    tracks: dict[int, SpcTrack] | None = None,
) -> MeasurementOutcome:
    """Record one result, judge it (spec, then SPC) and apply rule 5 if it deviates.

    ``tracks`` (batch ingest) carries each characteristic's SPC state from one result to
    the next; without it the state is read from the database.
    """
    spec = SpecLimits(lsl=characteristic.lsl, usl=characteristic.usl)
    track = tracks.get(characteristic.id) if tracks is not None else None
    if track is None:
        track = load_track(session, characteristic)
        if tracks is not None:
            tracks[characteristic.id] = track
    limits, just_established = _advance(session, characteristic, track, spec, value)
    verdict = judge(value, spec, track.history, None if just_established else limits)
    track.history = [*track.history, value][-_HISTORY:]
    result = MeasurementResult(
        characteristic_id=characteristic.id,
        job_order_id=job_order.id if job_order else None,
        job_operation_id=operation.id if operation else None,
        lot_id=lot.id if lot else None,
        work_unit_id=work_unit.id if work_unit else (operation.work_unit_id if operation else None),
        value=value,
        unit=unit or characteristic.unit,
        measured_at=measured_at,
        recorded_at=utcnow(),
        source=source,
        actor=actor.name,
        in_spec=verdict.out_of_spec is None,
        spc_rules=",".join(str(r.value) for r in verdict.rules),
    )
    session.add(result)
    nc = None
    if verdict.deviation:
        session.flush()
        nc = _open_or_join(
            session,
            characteristic=characteristic,
            verdict=verdict,
            result=result,
            job_order=job_order,
            operation=operation,
            lot=lot,
            actor=actor,
        )
        result.nonconformance_id = nc.id
    session.flush()
    return MeasurementOutcome(result, verdict, nc)


def _affected_lots(
    session: Session, operation: JobOperation | None, lot: MaterialLot | None
) -> list[MaterialLot]:
    """The lot measured, else every lot the operation has produced so far."""
    if lot is not None:
        return [lot]
    if operation is None:
        return []
    return list(
        session.execute(
            select(MaterialLot).where(MaterialLot.produced_by_operation_id == operation.id)
        )
        .scalars()
        .all()
    )


def _open_or_join(
    session: Session,
    *,
    characteristic: InspectionCharacteristic,
    verdict: Verdict,
    result: MeasurementResult,
    job_order: JobOrder | None,
    operation: JobOperation | None,
    lot: MaterialLot | None,
    actor: Actor,
) -> Nonconformance:
    source = (
        dz.NonconformanceSource.OUT_OF_SPEC if verdict.out_of_spec else dz.NonconformanceSource.SPC
    )
    description = verdict.describe(characteristic.name)
    existing = session.execute(
        select(Nonconformance).where(
            Nonconformance.state == dz.NonconformanceState.OPEN.value,
            Nonconformance.characteristic_id == characteristic.id,
            Nonconformance.job_order_id == (job_order.id if job_order else None),
        )
    ).scalar_one_or_none()
    if existing is not None:
        nc = existing
        audit.append(
            session,
            actor=actor.name,
            action="nonconformance.result_added",
            object_ref=f"nonconformance:{nc.number}",
            detail={"measurement": result.id, "value": result.value, "why": description},
        )
    else:
        nc = Nonconformance(
            number=f"tmp-{uuid.uuid4().hex[:20]}",
            state=dz.NonconformanceState.OPEN.value,
            source=source.value,
            description=description,
            characteristic_id=characteristic.id,
            job_order_id=job_order.id if job_order else None,
            # When the deviating value was measured (plant time for a plant event, issue 13).
            opened_at=result.measured_at,
            opened_by=actor.name,
        )
        session.add(nc)
        session.flush()
        nc.number = f"NC-{nc.id:06d}"
        audit.append(
            session,
            actor=actor.name,
            action="nonconformance.opened",
            object_ref=f"nonconformance:{nc.number}",
            detail={
                "source": source.value,
                "why": description,
                "measurement": result.id,
                "value": result.value,
                "job_order": job_order.code if job_order else None,
            },
        )
    reason = f"{nc.number}: {description}"
    for affected in _affected_lots(session, operation, lot):
        _hold(session, nc, "lot", affected.id, at=result.measured_at)
        if affected.status not in (LotStatus.REJECTED.value, LotStatus.CONSUMED.value):
            hold_lot(session, affected.code, reason, actor=actor)
    if job_order is not None:
        _hold(session, nc, "job_order", job_order.id, at=result.measured_at)
        if JobOrderState(job_order.state) in _HOLDABLE:
            hold_job_order(session, job_order.code, reason, actor=actor)
    return nc


def _hold(session: Session, nc: Nonconformance, kind: str, object_id: int, *, at: datetime) -> None:
    exists = session.execute(
        select(QualityHold.id).where(
            QualityHold.nonconformance_id == nc.id,
            QualityHold.object_kind == kind,
            QualityHold.object_id == object_id,
        )
    ).first()
    if exists is None:
        session.add(
            QualityHold(
                nonconformance_id=nc.id,
                object_kind=kind,
                object_id=object_id,
                placed_at=at,
                placed_by=nc.opened_by,
                reason=nc.description[:500],
            )
        )
        session.flush()


# ------------------------------------------------------------------ nonconformances


def get_nonconformance(session: Session, number: str) -> Nonconformance:
    row = session.execute(
        select(Nonconformance).where(Nonconformance.number == number)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("nonconformance", number)
    return row


def list_nonconformances(
    session: Session, *, state: str | None = None, job_order: str | None = None, limit: int = 100
) -> Sequence[Nonconformance]:
    q = select(Nonconformance).order_by(Nonconformance.id.desc()).limit(limit)
    if state:
        q = q.where(Nonconformance.state == state)
    if job_order:
        q = q.where(Nonconformance.job_order_id == get_job_order(session, job_order).id)
    return session.execute(q).scalars().all()


def holds_of(session: Session, nc: Nonconformance) -> list[QualityHold]:
    return list(
        session.execute(
            select(QualityHold)
            .where(QualityHold.nonconformance_id == nc.id)
            .order_by(QualityHold.id)
        )
        .scalars()
        .all()
    )


def held_objects(session: Session, nc: Nonconformance) -> dict[str, list[str]]:
    """Codes of the lots and job orders the nonconformance holds (or held)."""
    out: dict[str, list[str]] = {"lots": [], "job_orders": []}
    for hold in holds_of(session, nc):
        if hold.object_kind == "lot":
            out["lots"].append(session.get_one(MaterialLot, hold.object_id).code)
        else:
            out["job_orders"].append(session.get_one(JobOrder, hold.object_id).code)
    return out


def open_manual_nonconformance(
    session: Session,
    *,
    description: str,
    job_order: str | None,
    lots: Sequence[str],
    actor: Actor,
) -> Nonconformance:
    """A nonconformance raised by a person (e.g. a visual defect), holding what it names."""
    if not job_order and not lots:
        raise InvalidInput(
            "a nonconformance must name a job order or at least one lot", object_ref="-"
        )
    job = get_job_order(session, job_order) if job_order else None
    nc = Nonconformance(
        number=f"tmp-{uuid.uuid4().hex[:20]}",
        state=dz.NonconformanceState.OPEN.value,
        source=dz.NonconformanceSource.MANUAL.value,
        description=description,
        job_order_id=job.id if job else None,
        opened_at=utcnow(),
        opened_by=actor.name,
    )
    session.add(nc)
    session.flush()
    nc.number = f"NC-{nc.id:06d}"
    audit.append(
        session,
        actor=actor.name,
        action="nonconformance.opened",
        object_ref=f"nonconformance:{nc.number}",
        detail={"source": "manual", "why": description, "job_order": job_order, "lots": list(lots)},
    )
    reason = f"{nc.number}: {description}"
    for code in lots:
        lot = get_lot(session, code)
        _hold(session, nc, "lot", lot.id, at=nc.opened_at)
        hold_lot(session, code, reason, actor=actor)
    if job is not None:
        _hold(session, nc, "job_order", job.id, at=nc.opened_at)
        if JobOrderState(job.state) in _HOLDABLE:
            hold_job_order(session, job.code, reason, actor=actor)
    return nc


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
            remaining = _open_holds(session, "lot", lot.id)
            _audit_lifted(session, actor, f"material_lot:{lot.code}", nc.number, reason, remaining)
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
            remaining = _open_holds(session, "job_order", job.id)
            _audit_lifted(session, actor, f"job_order:{code}", nc.number, reason, remaining)
            if not remaining and job.state == JobOrderState.HELD.value:
                release_job_order_hold(session, job.code, reason, actor=actor)


# ------------------------------------------------------------------ holds and their owners


def _open_holds(session: Session, kind: str, object_id: int) -> list[OpenHold]:
    """The holds still open on a lot or job order, each with its owner."""
    rows = session.execute(
        select(QualityHold.id, Nonconformance.number)
        .outerjoin(Nonconformance, Nonconformance.id == QualityHold.nonconformance_id)
        .where(
            QualityHold.object_kind == kind,
            QualityHold.object_id == object_id,
            QualityHold.released_at.is_(None),
        )
        .order_by(QualityHold.id)
    ).all()
    return [OpenHold(hold_id, number or BY_HAND) for hold_id, number in rows]


def _audit_lifted(
    session: Session,
    actor: Actor,
    object_ref: str,
    owner: str,
    reason: str,
    remaining: Sequence[OpenHold],
) -> None:
    audit.append(
        session,
        actor=actor.name,
        action="hold.lifted",
        object_ref=object_ref,
        detail={
            "owner": owner,
            "reason": reason,
            "still_held_by": sorted({h.owner for h in remaining}),
        },
    )


def _place_by_hand(session: Session, kind: str, object_id: int, reason: str, actor: Actor) -> None:
    session.add(
        QualityHold(
            nonconformance_id=None,
            object_kind=kind,
            object_id=object_id,
            placed_at=utcnow(),
            placed_by=actor.name,
            reason=reason,
        )
    )
    session.flush()


def _lift_by_hand(
    session: Session, kind: str, object_id: int, object_ref: str, reason: str, actor: Actor
) -> tuple[bool, bool]:
    """Lift the holds placed by hand on an object; (any hold had an owner, still held).

    Refused (and the refusal recorded) when only nonconformances hold it."""
    open_holds = _open_holds(session, kind, object_id)
    try:
        lifted = holds_lifted_by_hand_release(object_ref, open_holds)
    except RuleViolation as exc:
        record_refusal(session, exc, actor=actor, action=f"release {kind} hold")
        raise
    now = utcnow()
    for hold_id in lifted:
        row = session.get_one(QualityHold, hold_id)
        row.released_at = now
        row.released_by = actor.name
        row.release_reason = reason
    session.flush()
    remaining = [h for h in open_holds if h.id not in set(lifted)]
    if lifted:
        _audit_lifted(session, actor, object_ref, BY_HAND, reason, remaining)
    return bool(open_holds), stays_held(open_holds, lifted)


def hold_job_order_by_hand(session: Session, code: str, reason: str, *, actor: Actor) -> JobOrder:
    """A person (supervisor or QA) puts a job order on hold. The hold is theirs: only a
    release by hand lifts it, never a nonconformance's disposition. A job order already
    held (by a nonconformance, say) gets this hold as well."""
    job = get_job_order(session, code, for_update=True)
    if job.state == JobOrderState.HELD.value:
        audit.append(
            session,
            actor=actor.name,
            action="job_order.hold",
            object_ref=f"job_order:{code}",
            detail={"reason": reason, "previous": job.state, "owner": BY_HAND},
        )
    else:
        hold_job_order(session, code, reason, actor=actor)
    _place_by_hand(session, "job_order", job.id, reason, actor)
    return job


def release_job_order_hold_by_hand(
    session: Session, code: str, reason: str, *, actor: Actor
) -> JobOrder:
    """Lift the holds placed by hand on a job order; it moves again only if no
    nonconformance holds it too (``HELD`` if only nonconformances hold it)."""
    job = get_job_order(session, code, for_update=True)
    _, held = _lift_by_hand(session, "job_order", job.id, f"job_order:{code}", reason, actor)
    if held:
        return job
    return release_job_order_hold(session, code, reason, actor=actor)


def hold_lot_by_hand(session: Session, code: str, reason: str, *, actor: Actor) -> MaterialLot:
    """A person puts a material lot on hold; only a release by hand lifts this hold."""
    lot = hold_lot(session, code, reason, actor=actor)
    _place_by_hand(session, "lot", lot.id, reason, actor)
    return lot


def release_lot_by_hand(session: Session, code: str, reason: str, *, actor: Actor) -> MaterialLot:
    """Lift the holds placed by hand on a lot; it becomes consumable again only if no
    nonconformance holds it too (``HELD`` if only nonconformances hold it)."""
    lot = get_lot(session, code, for_update=True)
    _, held = _lift_by_hand(session, "lot", lot.id, f"material_lot:{code}", reason, actor)
    if held:
        return lot
    return release_lot(session, code, reason, actor=actor)


def signature_of(session: Session, nc: Nonconformance) -> ElectronicSignature | None:
    if nc.signature_id is None:
        return None
    return session.get(ElectronicSignature, nc.signature_id)


def measurements(
    session: Session, characteristic: InspectionCharacteristic, *, limit: int = 200
) -> list[MeasurementResult]:
    rows = (
        session.execute(
            select(MeasurementResult)
            .where(MeasurementResult.characteristic_id == characteristic.id)
            .order_by(MeasurementResult.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )
    return list(reversed(rows))
