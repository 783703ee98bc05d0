"""Holds and their owners in the database (enforcement rule 5; the rules themselves are
:mod:`mes_core.quality.holds`): a nonconformance's holds, placed with it and lifted by its
disposition, and the holds a person places and lifts by hand.

Functions over a session; they flush but never commit and append an audit entry for every
change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.domain.errors import RuleViolation
from mes_core.domain.states import JobOrderState
from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.execution import (
    get_job_order,
    hold_job_order,
    hold_lot,
    release_job_order_hold,
    release_lot,
)
from mes_core.persistence.masterdata import get_lot
from mes_core.persistence.models import JobOrder, MaterialLot
from mes_core.persistence.refusals import record_refusal
from mes_core.persistence.security import Actor
from mes_core.quality.holds import BY_HAND, OpenHold, holds_lifted_by_hand_release, stays_held
from mes_core.quality.models import Nonconformance, QualityHold

# ------------------------------------------------------------------ a nonconformance's holds


def place_hold(
    session: Session, nc: Nonconformance, kind: str, object_id: int, *, at: datetime
) -> None:
    """Record that ``nc`` holds the lot or job order ``object_id`` (once)."""
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


def holds_of(session: Session, nc: Nonconformance) -> list[QualityHold]:
    """The holds ``nc`` placed, open or lifted."""
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


# ------------------------------------------------------------------ holds and their owners


def open_holds_on(session: Session, kind: str, object_id: int) -> list[OpenHold]:
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


def audit_lifted(
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
    open_holds = open_holds_on(session, kind, object_id)
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
        audit_lifted(session, actor, object_ref, BY_HAND, reason, remaining)
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
