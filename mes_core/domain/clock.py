"""Which clock a record takes (no I/O).

An MES meeting a plant keeps three times apart:

- **plant time**: the timestamp a plant event carries (a PLC's, an OPC UA source
  timestamp). The MES trusts it for what the equipment did: states, counts, measurements.
- **business time**: when an action of a person happened (ISA-95 Part 3 job response
  actual start/end, a consumption, a signature). It is the MES's own clock at the moment of
  the request, unless the request states ``occurred_at`` *and* the actor holds a role
  allowed to backdate (:data:`BACKDATING_ROLES`); then the stated time is recorded, and
  the rules (certification, calibration, lot expiry) are judged at that time.
- **record time**: when the MES wrote the row (the audit entry's ``at``), always its own
  clock; an audit entry of a backdated action keeps the business time beside it
  (``detail.occurred_at``), so a reviewer sees both (21 CFR 11.10(e): the time of the
  entry is never what the user says).

At speed 1 with people at terminals nothing of this is needed: they send no
``occurred_at`` and business time is the MES's clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from mes_core.domain.errors import Forbidden, InvalidInput
from mes_core.domain.states import Role

#: Roles whose requests may state ``occurred_at``: the backdating permission, and the
#: integration role (systems that report what happened at the plant).
BACKDATING_ROLES = frozenset({Role.BACKDATE.value, Role.INTEGRATION.value})


def business_time(
    occurred_at: datetime | None,
    *,
    now: datetime,
    actor: str,
    roles: Iterable[str],
    object_ref: str,
) -> datetime:
    """The time an action is recorded at: ``now`` (the MES's clock) when no
    ``occurred_at`` is stated, else ``occurred_at`` in UTC if the actor may backdate.

    Raises :class:`Forbidden` (``FORBIDDEN``) when an actor without one of
    :data:`BACKDATING_ROLES` states a time: silently stamping ``now`` instead would record
    something the caller did not ask for."""
    if occurred_at is None:
        return now
    if occurred_at.tzinfo is None:
        raise InvalidInput(
            f"occurred_at {occurred_at.isoformat()} has no time zone", object_ref=object_ref
        )
    if not BACKDATING_ROLES.intersection(roles):
        raise Forbidden(
            f"{actor} may not state when an action happened (occurred_at): it needs one of "
            f"{', '.join(sorted(BACKDATING_ROLES))}",
            object_ref=object_ref,
        )
    return occurred_at.astimezone(UTC)


def check_not_before(when: datetime, earlier: datetime | None, *, what: str, ref: str) -> None:
    """An end, a consumption or a signature cannot be recorded before what it follows
    (``earlier``), e.g. an operation's end before its start (InvalidInput, 422)."""
    if earlier is None:
        return
    if earlier.tzinfo is None:  # SQLite gives naive UTC back
        earlier = earlier.replace(tzinfo=UTC)
    if when < earlier:
        raise InvalidInput(
            f"{what} at {when.isoformat()} is before {earlier.isoformat()}", object_ref=ref
        )
