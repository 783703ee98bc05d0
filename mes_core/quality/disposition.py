"""Nonconformances, holds and their disposition: pure rules (enforcement rule 5).

ISA-95 Part 3 (IEC 62264-3), quality operations management: a deviation found by a test
(here: a measurement result out of specification or an SPC rule violation) opens a
nonconformance, puts the affected material lots and the job order on hold, and only the
quality role may dispose it (release, rework or scrap) with an electronic signature.

Effect of each disposition on the held lots and job order (what an MES user expects):

- ``release``: the deviation is accepted (e.g. measurement error): lots go back to the
  status they had before the hold, the job order to its state before the hold.
- ``rework``: the material is to be reprocessed: lots go back to their previous status
  (so the rework operation can consume them) and the quantity counts as rework (first
  pass yield, ISO 22400-2); the job order resumes.
- ``scrap``: the lots are rejected (never consumable again); the job order resumes, with
  the lost quantity reported as scrap.

A job order or lot stays on hold while *any* hold is still open on it: another
nonconformance's, or one placed by hand (:mod:`mes_core.quality.holds`).
"""

from __future__ import annotations

from enum import StrEnum

from mes_core.domain.states import LotStatus


class Disposition(StrEnum):
    """Disposition of a nonconformance."""

    RELEASE = "release"
    REWORK = "rework"
    SCRAP = "scrap"


class NonconformanceState(StrEnum):
    OPEN = "open"
    DISPOSED = "disposed"


class NonconformanceSource(StrEnum):
    OUT_OF_SPEC = "out_of_spec"
    SPC = "spc"
    MANUAL = "manual"


class DispositionError(ValueError):
    """A disposition that is not allowed (already disposed, unknown kind...)."""


def lot_status_after(
    disposition: Disposition, status_before_hold: str | None, still_held: bool
) -> LotStatus:
    """The status a held lot takes when a nonconformance holding it is disposed."""
    if disposition == Disposition.SCRAP:
        return LotStatus.REJECTED
    if still_held:
        return LotStatus.ON_HOLD
    if status_before_hold in {s.value for s in LotStatus} and status_before_hold != "on_hold":
        return LotStatus(status_before_hold)
    return LotStatus.AVAILABLE


def check_can_dispose(state: str, number: str) -> None:
    """Only an open nonconformance can be disposed (a signature is never overwritten)."""
    if state != NonconformanceState.OPEN:
        raise DispositionError(f"nonconformance {number} is already {state}")
