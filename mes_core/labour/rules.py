"""Labour booking rules (ISA-95 Part 3, personnel actuals of a job response): pure.

A person clocks in at the start of attendance and out at its end; while clocked in they
book labour on job operations (start, stop). Labour hours are the booked intervals, an
open one counted up to "now". Rule 3 of PRODUCT.md (certification) is checked by the
service with :func:`mes_core.domain.rules.check_certification` when labour starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


class LabourError(ValueError):
    """A clock or booking action that does not fit the person's current situation."""


@dataclass(frozen=True)
class Booking:
    """An interval of labour (or attendance); ``end`` ``None`` while still open."""

    start: datetime
    end: datetime | None


def check_clock_in(person: str, open_attendance: bool) -> None:
    if open_attendance:
        raise LabourError(f"person {person} is already clocked in")


def check_clock_out(person: str, open_attendance: bool) -> None:
    if not open_attendance:
        raise LabourError(f"person {person} is not clocked in")


def check_labour_start(
    person: str, operation_ref: str, *, clocked_in: bool, already_booked: bool
) -> None:
    """Labour can be booked only by a person clocked in, once per operation at a time."""
    if not clocked_in:
        raise LabourError(f"person {person} must clock in before booking labour on {operation_ref}")
    if already_booked:
        raise LabourError(f"person {person} is already booked on {operation_ref}")


def check_labour_stop(person: str, operation_ref: str, *, booked: bool) -> None:
    if not booked:
        raise LabourError(f"person {person} has no open labour booking on {operation_ref}")


def hours(bookings: Iterable[Booking], now: datetime) -> float:
    """Total hours of ``bookings``; open ones count up to ``now``."""
    seconds = 0.0
    for booking in bookings:
        end = booking.end or now
        if end > booking.start:
            seconds += (end - booking.start).total_seconds()
    return seconds / 3600.0
