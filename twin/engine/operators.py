"""Operators: who is on shift (calendars, breaks) for a work unit that needs a skill.

A work unit with ``operator_attends: shift`` runs while someone with its skill is on shift
(``Crew``: a crew minds the line). With ``operator_attends: cycle`` each cycle (and
setup) takes one person with the skill from the line's ``OperatorPool`` and frees them at
its end; a person attends one work unit at a time, whatever skills they have, so the
people on shift are a shared resource whose capacity follows the shift calendar.
"""

from __future__ import annotations

from collections import deque
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


class Person:
    """One operator: present while on shift, busy while attending a work unit."""

    __slots__ = ("busy", "id", "pools", "present")

    def __init__(self, person_id: str) -> None:
        self.id = person_id
        self.present = False
        self.busy = False
        self.pools: list[OperatorPool] = []

    def freed(self) -> None:
        """Present and not busy now: the first waiting work unit of its pools takes it."""
        for pool in self.pools:
            if pool.waiting:
                pool.waiting.popleft().succeed(self)
                self.busy = True
                return


class OperatorPool:
    """The people of a line with one skill, taken one per cycle (first come, first served)."""

    def __init__(self, skill: str, people: list[Person]) -> None:
        self.skill = skill
        self.people = people
        self.waiting: deque[simpy.Event] = deque()
        for person in people:
            person.pools.append(self)

    def try_take(self) -> Person | None:
        for person in self.people:
            if person.present and not person.busy:
                person.busy = True
                return person
        return None

    def wait(self, env: simpy.Environment) -> simpy.Event:
        """An event whose value is the person assigned (busy already) when one is free."""
        ev = env.event()
        self.waiting.append(ev)
        return ev

    @staticmethod
    def give_back(person: Person) -> None:
        person.busy = False
        if person.present:
            person.freed()


def _shifts(env: simpy.Environment, person: Person, intervals: Iterator[Interval]) -> SimGen:
    for start, end in intervals:
        if end <= env.now:
            continue
        if start > env.now:
            yield env.timeout(start - env.now)
        person.present = True
        if not person.busy:
            person.freed()
        yield env.timeout(end - env.now)
        person.present = False  # a cycle in progress is finished (no preemption)


def staff_work_units(engine: Engine) -> None:
    """Give each work unit that needs an operator skill the crew of its line and skill
    (one crew per line and skill, shared by the work units that need it)."""
    model = engine.model
    calendars = {c.id: c for c in model.shift_calendars}
    start = model.plant.start
    cache: dict[tuple[str, str], Crew] = {}
    people: dict[str, Person] = {}  # one per operator, whatever pools (skills) they are in
    pools: dict[tuple[str, str], OperatorPool] = {}
    for line in engine.lines:
        for wu in line.work_units:
            skill = wu.spec.operator_skill
            if skill is None:
                continue
            if wu.spec.operator_attends == "cycle":
                pool = pools.get((line.code, skill))
                if pool is None:
                    members = []
                    for op in model.operators:
                        if skill not in op.skills or (op.lines and line.code not in op.lines):
                            continue
                        person = people.get(op.id)
                        if person is None:
                            person = people[op.id] = Person(op.id)
                            stream = operator_intervals(op, calendars[op.calendar], start)
                            engine.env.process(_shifts(engine.env, person, stream))
                        members.append(person)
                    pool = pools[(line.code, skill)] = OperatorPool(skill, members)
                wu.pool = pool
                continue
            key = (line.code, skill)
            crew = cache.get(key)
            if crew is None:
                crew_people = [
                    op
                    for op in model.operators
                    if skill in op.skills and (not op.lines or line.code in op.lines)
                ]
                streams = [
                    operator_intervals(op, calendars[op.calendar], start) for op in crew_people
                ]
                crew = Crew(engine.env, merge(streams))
                cache[key] = crew
            wu.crew = crew
