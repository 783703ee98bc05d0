"""When the bench's people really did what: the ground truth of operator actions' times.

Every action of the run's people (and of its deviations) goes through the system under
test; :class:`ActionWitness` stands in front of it and notes, per operation of a job order,
the plant time at which a start and a completion were accepted. The reconciliation holds
the MES's recorded start and end against these (``reconcile.OperationTimes``), so an MES
that records operator actions on another clock (its wall clock, a compressed one) is
caught.

A call that did not come back (``SutUnavailable``: the MES died or timed out) may still have
been recorded by the MES; if a later attempt at the same action is refused as already done
(``INVALID_TRANSITION``), the first unanswered attempt is when it happened.
"""

from __future__ import annotations

from typing import Any, cast

from twin.scenario.reconcile import OperationTimes
from twin.scenario.sut import Answer, OperatorActions, SutUnavailable, SystemUnderTest


class ActionWitness:
    """A ``SystemUnderTest`` that forwards everything to ``sut`` and keeps
    :attr:`operation_times`."""

    def __init__(self, sut: SystemUnderTest) -> None:
        self.sut = sut
        self.operation_times: dict[tuple[str, str], OperationTimes] = {}
        self.starters: dict[tuple[str, str], str] = {}
        """Who started each operation the MES accepted as started."""
        self._unanswered: dict[tuple[str, str, str, str], float] = {}
        self._started_on: dict[tuple[str, str], str] = {}
        """The work unit whose start is the operation's start (its first)."""

    def as_sut(self) -> SystemUnderTest:
        """This witness where a ``SystemUnderTest`` is expected (it forwards every method
        it does not define, see ``__getattr__``)."""
        return cast(SystemUnderTest, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sut, name)

    def _terminal(self) -> OperatorActions:
        """The MES's operator actions (people call these only when it has them)."""
        return cast(OperatorActions, self.sut)

    def _note(
        self, what: str, order: str, segment: str, at: float, call: Any, unit: str = ""
    ) -> Answer:
        """An operation's start is its first work unit's, its end its last's (an operation
        running on several work units is started and completed on each). Started again on
        that same work unit (the MES accepted a second start, after an out-of-sequence one
        say), the later start is the one it keeps, and so the one that counts."""
        key = (what, order, segment, unit)
        try:
            answer: Answer = call()
        except SutUnavailable:
            self._unanswered.setdefault(key, at)
            raise
        when: float | None = None
        if answer.accepted:
            when = round(at, 3)  # as the MES keeps it (milliseconds)
        elif answer.rule == "INVALID_TRANSITION" and key in self._unanswered:
            when = self._unanswered[key]
        self._unanswered.pop(key, None)
        if when is not None:
            times = self.operation_times.setdefault((order, segment), OperationTimes())
            if what == "start":
                first = self._started_on.setdefault((order, segment), unit)
                if times.start is None or first == unit:
                    times.start = when
            else:
                times.end = when
        return answer

    def start_operation(
        self, order: str, segment: str, person: str, work_unit: str, at: float
    ) -> Answer:
        answer = self._note(
            "start",
            order,
            segment,
            at,
            lambda: self._terminal().start_operation(order, segment, person, work_unit, at),
            work_unit,
        )
        if answer.accepted and self._started_on.get((order, segment)) == work_unit:
            self.starters[(order, segment)] = person  # who started it where it counts
        return answer

    def complete_operation(
        self,
        order: str,
        segment: str,
        person: str,
        at: float,
        output_lot: str | None,
        *,
        work_unit: str | None = None,
        lot_quantity: float | None = None,
    ) -> Answer:
        terminal = self._terminal()
        # Keywords only when given: an adapter that knows no work units (or declared lot
        # quantities) is called as simply as its job allows.
        extra: dict[str, Any] = {}
        if work_unit is not None:
            extra["work_unit"] = work_unit
        if lot_quantity is not None:
            extra["lot_quantity"] = lot_quantity
        return self._note(
            "end",
            order,
            segment,
            at,
            lambda: terminal.complete_operation(order, segment, person, at, output_lot, **extra),
            work_unit or "",
        )
