"""Operators: who is on shift (calendars, breaks) for a work unit that needs a skill."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import simpy

from twin.engine.common import SimGen
from twin.shifts import Interval, merge, operator_intervals

if TYPE_CHECKING:
    from twin.engine.plant import Engine


class Crew:
    """Whether someone with ``skill`` is on shift on a line (shift calendars, breaks)."""

    def __init__(self, env: simpy.Environment, intervals: Iterator[Interval]) -> None:
        self.env = env
        self.available = False
        self._wake: simpy.Event | None = None
        env.process(self._run(intervals))

    def wait(self) -> simpy.Event:
        if self._wake is None:
            self._wake = self.env.event()
        return self._wake

    def _run(self, intervals: Iterator[Interval]) -> SimGen:
        env = self.env
        for start, end in intervals:
            if end <= env.now:
                continue
            if start > env.now:
                yield env.timeout(start - env.now)
            self.available = True
            if self._wake is not None:
                wake, self._wake = self._wake, None
                wake.succeed()
            yield env.timeout(end - env.now)
            self.available = False


def staff_work_units(engine: Engine) -> None:
    """Give each work unit that needs an operator skill the crew of its line and skill
    (one crew per line and skill, shared by the work units that need it)."""
    model = engine.model
    calendars = {c.id: c for c in model.shift_calendars}
    start = model.plant.start
    cache: dict[tuple[str, str], Crew] = {}
    for line in engine.lines:
        for wu in line.work_units:
            skill = wu.spec.operator_skill
            if skill is None:
                continue
            key = (line.code, skill)
            crew = cache.get(key)
            if crew is None:
                people = [
                    op
                    for op in model.operators
                    if skill in op.skills and (not op.lines or line.code in op.lines)
                ]
                streams = [operator_intervals(op, calendars[op.calendar], start) for op in people]
                crew = Crew(engine.env, merge(streams))
                cache[key] = crew
            wu.crew = crew
