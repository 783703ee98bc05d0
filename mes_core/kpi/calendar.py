"""Shift calendars held by the MES, and the time intervals they plan.

ISO 22400-2:2014 builds every availability figure on *planned* time that the MES knows
and the machine does not: the planned operation time (POT) comes from the shift calendar,
and the planned busy time is POT less planned down time (PBT = POT - PDOT; breaks and
planned maintenance are PDOT). A calendar here is a weekly pattern of shifts in one time
zone, each with its planned breaks, plus non-working days (holidays).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Interval = tuple[datetime, datetime]


class CalendarError(ValueError):
    """A shift calendar or a time window that makes no sense."""


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise CalendarError(f"{what} must be timezone-aware, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union of ``intervals`` (empty ones dropped)."""
    out: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Intersection of two interval sets (each merged first)."""
    left, right = merge(a), merge(b)
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if end > start:
            out.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The parts of ``a`` not covered by ``b``.

    One sweep over both, merged and sorted: O(n + m) after sorting (state histories of a
    long window against many stops; it was O(n x m))."""
    out: list[Interval] = []
    cuts = merge(b)
    first = 0  # the first cut that may still reach the intervals to come
    for start, end in merge(a):
        while first < len(cuts) and cuts[first][1] <= start:
            first += 1
        cursor = start
        for cut_start, cut_end in itertools.islice(cuts, first, None):
            if cut_start >= end:
                break
            if cut_start > cursor:
                out.append((cursor, cut_start))
            cursor = max(cursor, cut_end)
        if cursor < end:
            out.append((cursor, end))
    return out


def total_seconds(intervals: Iterable[Interval]) -> float:
    """Summed length of ``intervals`` (merged first, so overlaps count once)."""
    return sum((end - start).total_seconds() for start, end in merge(intervals))


@dataclass(frozen=True)
class Shift:
    """A shift on some weekdays (0 = Monday), from ``start`` to ``end`` local time.

    ``end`` at or before ``start`` means the shift runs past midnight into the next day.
    ``breaks`` are planned down time inside the shift (local start/end times).
    """

    name: str
    start: time
    end: time
    weekdays: frozenset[int] = frozenset(range(7))
    breaks: tuple[tuple[time, time], ...] = ()

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise CalendarError(f"shift {self.name!r}: weekdays must be within 0..6")


@dataclass(frozen=True)
class ShiftCalendar:
    """Weekly shift pattern of a work unit or line, in the plant's time zone."""

    name: str
    timezone: str = "UTC"
    shifts: tuple[Shift, ...] = ()
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CalendarError(
                f"calendar {self.name!r}: unknown time zone {self.timezone!r}"
            ) from exc

    def _local_spans(self, start: datetime, end: datetime) -> tuple[list[Interval], list[Interval]]:
        zone = ZoneInfo(self.timezone)
        operation: list[Interval] = []
        downtime: list[Interval] = []
        # A shift that starts the day before the window may run into it: start a day early.
        day = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date()
        while day <= last:
            if day not in self.holidays:
                for shift in self.shifts:
                    if day.weekday() not in shift.weekdays:
                        continue
                    s_start, s_end = _span(day, shift.start, shift.end, zone)
                    operation.append((s_start, s_end))
                    for b_from, b_to in shift.breaks:
                        b_start, b_end = _span(day, b_from, b_to, zone)
                        if b_start < s_start:
                            # A break after midnight belongs to the shift's second day.
                            b_start, b_end = b_start + timedelta(days=1), b_end + timedelta(days=1)
                        downtime.append((b_start, b_end))
            day += timedelta(days=1)
        return operation, downtime

    def planned_operation(self, start: datetime, end: datetime) -> list[Interval]:
        """Planned operation time (POT) intervals within ``[start, end)``, in UTC."""
        window = [(_aware(start, "window start"), _aware(end, "window end"))]
        operation, _ = self._local_spans(window[0][0], window[0][1])
        return intersect(operation, window)

    def planned_downtime(self, start: datetime, end: datetime) -> list[Interval]:
        """Planned down time (PDOT: breaks) within planned operation, in ``[start, end)``."""
        window = [(_aware(start, "window start"), _aware(end, "window end"))]
        operation, downtime = self._local_spans(window[0][0], window[0][1])
        return intersect(intersect(downtime, operation), window)

    def planned_busy(self, start: datetime, end: datetime) -> list[Interval]:
        """Planned busy time (PBT = POT - PDOT) intervals within ``[start, end)``."""
        return subtract(self.planned_operation(start, end), self.planned_downtime(start, end))


def _span(day: date, start: time, end: time, zone: ZoneInfo) -> Interval:
    begin = datetime.combine(day, start, tzinfo=zone)
    finish_day = day if end > start else day + timedelta(days=1)
    finish = datetime.combine(finish_day, end, tzinfo=zone)
    return begin.astimezone(UTC), finish.astimezone(UTC)


#: A calendar with no shifts: nothing is planned, so availability is undefined.
ALWAYS_OFF = ShiftCalendar(name="no shifts")

#: Round-the-clock operation with no planned breaks (24/7), the default for a work unit
#: that has no calendar of its own.
ROUND_THE_CLOCK = ShiftCalendar(
    name="24/7", shifts=(Shift(name="all day", start=time(0, 0), end=time(0, 0)),)
)
