"""When operators are on shift: shift calendars turned into intervals of simulated time.

A shift ``06:00-14:00`` on the days it applies, minus its breaks, gives intervals of
presence; shifts ending at or before their start cross midnight. Times of day are in the
time zone of the plant's ``start`` (simulation time 0). Intervals are produced lazily, day
by day, so a run of any length needs no horizon.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from plant_models.schema import WEEKDAYS, Operator, ShiftCalendar

Interval = tuple[float, float]


def operator_intervals(
    operator: Operator, calendar: ShiftCalendar, start: datetime, first_day: int = -1
) -> Iterator[Interval]:
    """Presence intervals (seconds since ``start``) of ``operator``, in order, forever."""
    tz = start.tzinfo
    day0 = start.date()
    shifts = [s for s in calendar.shifts if operator.shift is None or s.name == operator.shift]
    day = first_day
    while True:
        date = day0 + timedelta(days=day)
        pieces: list[Interval] = []
        for shift in shifts:
            if WEEKDAYS[date.weekday()] not in shift.days:
                continue
            s = datetime.combine(date, shift.start, tz)
            e = datetime.combine(date, shift.end, tz)
            if e <= s:
                e += timedelta(days=1)
            cuts: list[tuple[datetime, datetime]] = []
            for brk in shift.breaks:
                bs = datetime.combine(date, brk.start, tz)
                if bs < s:
                    bs += timedelta(days=1)
                be = datetime.combine(bs.date(), brk.end, tz)
                if be <= bs:
                    be += timedelta(days=1)
                cuts.append((bs, be))
            cursor = s
            for bs, be in sorted(cuts):
                if bs > cursor:
                    pieces.append(((cursor - start).total_seconds(), (bs - start).total_seconds()))
                cursor = max(cursor, be)
            if cursor < e:
                pieces.append(((cursor - start).total_seconds(), (e - start).total_seconds()))
        yield from sorted(pieces)
        day += 1


def merge(streams: Iterable[Iterator[Interval]]) -> Iterator[Interval]:
    """The union of several ordered interval streams, as ordered disjoint intervals.

    Touching intervals (one shift ends when the next begins) merge, so presence does not
    blink off at a shift change.
    """
    import heapq

    merged = heapq.merge(*streams)
    current: Interval | None = None
    for s, e in merged:
        if current is None:
            current = (s, e)
        elif s <= current[1]:
            current = (current[0], max(current[1], e))
        else:
            yield current
            current = (s, e)
    if current is not None:
        yield current
