"""Key performance indicators of ISO 22400-2:2014 for work units and lines: pure functions.

Time elements (ISO 22400-2:2014, clause 5, "time model" of a work unit), all in seconds
over a time window:

- POT, planned operation time: the shift calendar's working time in the window.
- PDOT, planned down time: planned breaks inside POT.
- PBT, planned busy time = POT - PDOT.
- APT, actual production time: time the unit was producing (state ``running``).
- AUST, actual unit setup time: state ``setup``.
- ADET, actual unit delay time: unplanned interruptions while busy (states ``down``,
  ``blocked``, ``starved``).
- ADOT, actual unit down time: time the unit was not executing although planned busy
  (states ``idle``, ``maintenance``, ``offline``, and time with no known state).
- AUBT, actual unit busy time = APT + AUST + ADET.

Actual elements are counted inside PBT only: the time model partitions planned busy time,
so production outside the calendar does not inflate availability above 1. Production that
happens anyway during planned down time (a coating pan finishing its batch through a
break) is kept apart as ``apt_outside_pbt``: effectiveness compares the planned run time of
the quantity produced with the time spent producing it, so it divides by all the running
time that made that quantity, not only the part inside PBT (else a batch unit's every
break would read as speed, and effectiveness could pass 100 %).

KPIs (ISO 22400-2:2014, clause 6, KPI descriptions):

- availability = APT / PBT
- effectiveness = sum(PRU x PQ) / APT (PRU, planned run time per unit, from the routing;
  with several products each product's PQ is weighted by its own PRU; APT here includes
  ``apt_outside_pbt``, see above)
- quality ratio = GQ / PQ
- OEE index = availability x effectiveness x quality ratio
- throughput rate = PQ / AUBT (units per hour of busy time)
- scrap ratio = SQ / PQ
- first pass yield = (PQ - SQ - RQ) / PQ: good parts that needed no rework

A ratio whose denominator is zero (no planned time, no production) is undefined and
reported as ``None``, never as 0 or 1: a dashboard must show "no data", not a fake figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mes_core.kpi.calendar import Interval, intersect, merge, subtract, total_seconds
from mes_core.schemas.plant_events import EquipmentState

#: Which work unit state counts towards which ISO 22400-2 actual time element.
STATE_TIME_ELEMENT: dict[EquipmentState, str] = {
    EquipmentState.RUNNING: "APT",
    EquipmentState.SETUP: "AUST",
    EquipmentState.DOWN: "ADET",
    EquipmentState.BLOCKED: "ADET",
    EquipmentState.STARVED: "ADET",
    EquipmentState.IDLE: "ADOT",
    EquipmentState.MAINTENANCE: "ADOT",
    EquipmentState.OFFLINE: "ADOT",
}


class KpiError(ValueError):
    """Inputs the KPI formulas cannot accept (negative quantities, inverted windows...)."""


@dataclass(frozen=True)
class StateInterval:
    """A work unit was in ``state`` from ``start`` to ``end`` (reason code optional)."""

    state: EquipmentState
    start: datetime
    end: datetime
    reason: str = ""


@dataclass(frozen=True)
class StateChange:
    """The work unit entered ``state`` at ``at`` (one row of the state history)."""

    state: EquipmentState
    at: datetime
    reason: str = ""


def state_intervals(changes: Sequence[StateChange], until: datetime) -> list[StateInterval]:
    """Turn a state history (changes in time order) into intervals; the last state lasts
    until ``until``. Changes after ``until`` are ignored."""
    ordered: list[StateChange] = sorted(changes, key=lambda c: c.at)
    out: list[StateInterval] = []
    followers: list[StateChange | None] = [*ordered[1:], None]
    for current, following in zip(ordered, followers[: len(ordered)], strict=True):
        if current.at >= until:
            break
        end = until if following is None else min(following.at, until)
        if end > current.at:
            out.append(StateInterval(current.state, current.at, end, current.reason))
    return out


@dataclass(frozen=True)
class TimeElements:
    """ISO 22400-2 time elements of one window, in seconds."""

    pot: float
    pdot: float
    pbt: float
    apt: float
    aust: float
    adet: float
    adot: float
    apt_outside_pbt: float = 0.0
    """Running time in the window outside PBT (planned down time, outside the calendar)."""

    @property
    def aubt(self) -> float:
        """Actual unit busy time: APT + AUST + ADET."""
        return self.apt + self.aust + self.adet

    def __add__(self, other: TimeElements) -> TimeElements:
        return TimeElements(
            pot=self.pot + other.pot,
            pdot=self.pdot + other.pdot,
            pbt=self.pbt + other.pbt,
            apt=self.apt + other.apt,
            aust=self.aust + other.aust,
            adet=self.adet + other.adet,
            adot=self.adot + other.adot,
            apt_outside_pbt=self.apt_outside_pbt + other.apt_outside_pbt,
        )


ZERO_TIME = TimeElements(0, 0, 0, 0, 0, 0, 0)


def time_elements(
    *,
    planned_operation: Sequence[Interval],
    planned_downtime: Sequence[Interval],
    states: Iterable[StateInterval],
) -> TimeElements:
    """Time elements from the calendar's planned intervals and the unit's state intervals.

    Planned busy time is POT minus PDOT; actual elements are the state intervals clipped
    to PBT, and PBT not covered by any known state counts as ADOT (not executing).
    """
    pot_iv = merge(planned_operation)
    pdot_iv = intersect(planned_downtime, pot_iv)
    pbt_iv = subtract(pot_iv, pdot_iv)
    buckets: dict[str, list[Interval]] = {"APT": [], "AUST": [], "ADET": [], "ADOT": []}
    covered: list[Interval] = []
    for iv in states:
        if iv.end < iv.start:
            raise KpiError(f"state interval {iv.state} ends before it starts")
        buckets[STATE_TIME_ELEMENT[iv.state]].append((iv.start, iv.end))
        covered.append((iv.start, iv.end))
    unknown = subtract(pbt_iv, covered)
    apt = total_seconds(intersect(buckets["APT"], pbt_iv))
    return TimeElements(
        pot=total_seconds(pot_iv),
        pdot=total_seconds(pdot_iv),
        pbt=total_seconds(pbt_iv),
        apt=apt,
        aust=total_seconds(intersect(buckets["AUST"], pbt_iv)),
        adet=total_seconds(intersect(buckets["ADET"], pbt_iv)),
        adot=total_seconds(intersect(buckets["ADOT"], pbt_iv)) + total_seconds(unknown),
        apt_outside_pbt=max(total_seconds(merge(buckets["APT"])) - apt, 0.0),
    )


@dataclass(frozen=True)
class ProducedQuantity:
    """Quantities of one product in the window, with its PRU (seconds per unit)."""

    good: float
    scrap: float
    pru_seconds: float
    rework: float = 0.0

    def __post_init__(self) -> None:
        for name in ("good", "scrap", "pru_seconds", "rework"):
            if getattr(self, name) < 0:
                raise KpiError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.rework > self.good + self.scrap:
            raise KpiError("rework quantity exceeds produced quantity")

    @property
    def produced(self) -> float:
        """PQ = GQ + SQ."""
        return self.good + self.scrap


@dataclass(frozen=True)
class Kpis:
    """ISO 22400-2 KPIs over a window with the elements they come from."""

    time: TimeElements
    produced_quantity: float
    good_quantity: float
    scrap_quantity: float
    rework_quantity: float
    planned_run_time: float
    availability: float | None
    effectiveness: float | None
    quality_ratio: float | None
    oee: float | None
    throughput_per_hour: float | None
    scrap_ratio: float | None
    first_pass_yield: float | None


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def compute_kpis(
    time: TimeElements, quantities: Iterable[ProducedQuantity], *, rework: float = 0.0
) -> Kpis:
    """Every KPI of the module docstring from the time elements and produced quantities.

    ``rework`` is rework quantity not attributed to one product (e.g. from dispositions).
    Rework of units made before the window can exceed the window's good units; first pass
    yield then bottoms out at 0 rather than going negative.
    """
    if rework < 0:
        raise KpiError(f"rework must be >= 0, got {rework}")
    items = list(quantities)
    pq = sum(q.produced for q in items)
    gq = sum(q.good for q in items)
    sq = sum(q.scrap for q in items)
    rq = sum(q.rework for q in items) + rework
    planned_run = sum(q.pru_seconds * q.produced for q in items)
    availability = _ratio(time.apt, time.pbt)
    effectiveness = _ratio(planned_run, time.apt + time.apt_outside_pbt)
    quality = _ratio(gq, pq)
    oee = (
        availability * effectiveness * quality
        if availability is not None and effectiveness is not None and quality is not None
        else None
    )
    throughput = _ratio(pq, time.aubt / 3600.0) if time.aubt > 0 else None
    return Kpis(
        time=time,
        produced_quantity=pq,
        good_quantity=gq,
        scrap_quantity=sq,
        rework_quantity=rq,
        planned_run_time=planned_run,
        availability=availability,
        effectiveness=effectiveness,
        quality_ratio=quality,
        oee=oee,
        throughput_per_hour=throughput,
        scrap_ratio=_ratio(sq, pq),
        first_pass_yield=_ratio(max(0.0, pq - sq - rq), pq),
    )


#: A factor above 1 by more than this is implausible (below it: floating-point noise).
PLAUSIBLE_TOLERANCE = 1e-6


def master_data_errors(kpis: Kpis) -> list[str]:
    """One sentence per factor above 100 %, naming its likely cause.

    Availability (APT / PBT), effectiveness (PRU x PQ / APT) and quality ratio (GQ / PQ)
    range 0 to 1 (ISO 22400-2:2014, clause 6). Above 1 the inputs, not the plant, are
    wrong: most often a routing PRU slower than the machine really runs.
    """
    out = []
    checks = (
        ("availability", kpis.availability, "APT exceeds PBT: the shift calendar plans "
         "less time than the unit ran"),
        ("effectiveness", kpis.effectiveness, "the routing's planned run time per unit "
         "(PRU) is slower than the machine really runs; set the operation segment's PRU to "
         "the machine's ideal cycle"),
        ("quality ratio", kpis.quality_ratio, "more good units than produced units"),
    )  # fmt: skip
    for name, value, cause in checks:
        if value is not None and value > 1 + PLAUSIBLE_TOLERANCE:
            out.append(f"master-data error: {name} {value:.1%} is above 100 %: {cause}")
    return out
