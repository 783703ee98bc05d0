"""Holds have owners: pure rules (enforcement rule 5).

A material lot or a job order may be held by several holds at once, each owned by what
placed it: a nonconformance (an out-of-spec result, an SPC violation, a person's report) or
a person who put it on hold by hand (a supervisor or QA). ISA-95 Part 3 (IEC 62264-3)
quality operations: a hold is lifted by the decision about *its* cause, so

- a disposition of a nonconformance lifts only the holds that nonconformance placed;
- a release by hand lifts only holds placed by hand, never a nonconformance's (that needs
  QA's signed disposition);
- the lot or job order moves again only when no hold on it is left open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mes_core.domain.errors import Rule, RuleViolation

#: The owner name of a hold placed by hand (the person is recorded as ``placed_by``).
BY_HAND = "by hand"


@dataclass(frozen=True)
class OpenHold:
    """A hold not released yet: its id and its owner (a nonconformance number, or
    :data:`BY_HAND`)."""

    id: int
    owner: str

    @property
    def by_hand(self) -> bool:
        return self.owner == BY_HAND


def holds_lifted_by_hand_release(object_ref: str, open_holds: Sequence[OpenHold]) -> list[int]:
    """The holds a release by hand of ``object_ref`` lifts: every hold placed by hand on it.

    Refused with ``HELD`` when only nonconformances hold it: their holds are lifted by a
    signed disposition only (rule 5). An object without any open hold gives ``[]``; the
    caller decides whether that is an error (a lot not on hold) or a hold from before holds
    had owners (released as it was placed).
    """
    mine = [h.id for h in open_holds if h.by_hand]
    if mine or not open_holds:
        return mine
    owners = ", ".join(sorted({h.owner for h in open_holds}))
    raise RuleViolation(
        Rule.HELD,
        f"{object_ref} is held by {owners}; only the signed disposition of that "
        "nonconformance releases it",
        object_ref=object_ref,
    )


def stays_held(open_holds: Iterable[OpenHold], lifted: Iterable[int]) -> bool:
    """True if a hold other than those ``lifted`` is still open on the object."""
    gone = set(lifted)
    return any(h.id not in gone for h in open_holds)
