"""Every refusal of an enforcement rule is itself recorded (PRODUCT.md, "Enforcement").

The refused action rolls back; the refusal is then appended to the audit trail in its own
committed transaction, so it survives the rollback. Service functions that enforce rules
are wrapped with :func:`enforced`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from mes_core.domain.errors import Forbidden, MesError, RuleViolation
from mes_core.persistence import audit
from mes_core.persistence.security import SYSTEM, Actor

P = ParamSpec("P")
T = TypeVar("T")


def record_refusal(session: Session, exc: MesError, *, actor: Actor, action: str) -> None:
    """Roll back the refused work, then append and commit the refusal (an enforcement
    rule's, or a role's: ``FORBIDDEN``)."""
    session.rollback()
    audit.append(
        session,
        actor=actor.name,
        action="refused",
        object_ref=exc.object_ref or "-",
        detail={"rule": exc.code, "message": exc.message, "attempted": action},
    )
    session.commit()


def enforced(
    fn: Callable[Concatenate[Session, P], T],
) -> Callable[Concatenate[Session, P], T]:
    """Wrap a service function so that a :class:`RuleViolation` it raises is recorded, and
    a :class:`Forbidden` decided inside it (e.g. a time stated without the right to
    backdate, :func:`mes_core.domain.clock.business_time`)."""

    @functools.wraps(fn)
    def wrapper(session: Session, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(session, *args, **kwargs)
        except (RuleViolation, Forbidden) as exc:
            actor = kwargs.get("actor", SYSTEM)
            assert isinstance(actor, Actor)
            record_refusal(session, exc, actor=actor, action=fn.__name__)
            raise

    return wrapper
