"""Shift calendars as presence intervals: days, breaks, night shifts, hand-overs."""

from __future__ import annotations

from datetime import datetime
from itertools import islice

from plant_models.schema import Operator, ShiftCalendar
from twin.shifts import merge, operator_intervals

MONDAY_6 = datetime.fromisoformat("2026-01-05T06:00:00+00:00")  # a Monday
H = 3600.0


def _calendar(*shifts: dict[str, object]) -> ShiftCalendar:
    return ShiftCalendar.model_validate({"id": "C", "shifts": list(shifts)})


def test_day_shift_with_a_break_gives_two_intervals_a_day() -> None:
    cal = _calendar(
        {
            "name": "day",
            "start": "06:00",
            "end": "14:00",
            "breaks": [{"start": "10:00", "end": "10:30"}],
        }
    )
    op = Operator(id="A", calendar="C")
    got = list(islice(operator_intervals(op, cal, MONDAY_6, first_day=0), 4))
    assert got == [(0.0, 4 * H), (4.5 * H, 8 * H), (24 * H, 28 * H), (28.5 * H, 32 * H)]


def test_night_shift_crosses_midnight_and_its_break_is_after_midnight() -> None:
    cal = _calendar(
        {
            "name": "night",
            "start": "22:00",
            "end": "06:00",
            "breaks": [{"start": "02:00", "end": "02:30"}],
        }
    )
    op = Operator(id="N", calendar="C")
    got = list(islice(operator_intervals(op, cal, MONDAY_6, first_day=0), 2))
    assert got == [(16 * H, 20 * H), (20.5 * H, 24 * H)]


def test_weekdays_only_skip_the_weekend() -> None:
    cal = _calendar(
        {
            "name": "day",
            "start": "06:00",
            "end": "14:00",
            "days": ["mon", "tue", "wed", "thu", "fri"],
        }
    )
    op = Operator(id="A", calendar="C")
    starts = [s for s, _ in islice(operator_intervals(op, cal, MONDAY_6, first_day=0), 6)]
    assert starts == [0.0, 24 * H, 48 * H, 72 * H, 96 * H, 168 * H]


def test_an_operator_works_only_the_named_shift() -> None:
    cal = _calendar(
        {"name": "early", "start": "06:00", "end": "14:00"},
        {"name": "late", "start": "14:00", "end": "22:00"},
    )
    op = Operator(id="L", calendar="C", shift="late")
    assert next(operator_intervals(op, cal, MONDAY_6, first_day=0)) == (8 * H, 16 * H)


def test_back_to_back_shifts_merge_so_presence_does_not_blink_at_hand_over() -> None:
    cal = _calendar(
        {"name": "early", "start": "06:00", "end": "14:00"},
        {"name": "late", "start": "14:00", "end": "22:00"},
    )
    early = operator_intervals(Operator(id="E", calendar="C", shift="early"), cal, MONDAY_6, 0)
    late = operator_intervals(Operator(id="L", calendar="C", shift="late"), cal, MONDAY_6, 0)
    assert list(islice(merge([early, late]), 2)) == [(0.0, 16 * H), (24 * H, 40 * H)]
