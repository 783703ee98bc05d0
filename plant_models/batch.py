"""Batch work units (ISA-88, IEC 61512-1): a unit that processes a batch through phases.

A batch work unit (a mixing vessel, a granulator) takes one unit of the line's flow at a
time, as every work unit does, but that unit is a batch: a quantity (``size`` in ``unit``,
the ISA-88 batch size of what the vessel holds) run through an ordered list of phases
(IEC 61512-1, 5.2.2.4 "phase": the lowest level of procedural element, e.g. charge, heat,
hold, discharge). Each phase has its own ``duration`` (any distribution of
``plant_models.distributions``) and, per process value of the work unit, what the value
does during the phase: a distribution (agitator speed, granulation end-point power) or a
``ramp`` of its set point from ``start`` to ``end`` over the phase, with noise ``sd``
(a heating phase's temperature). Between batches a value follows its own distribution.

The batch replaces the work unit's ``cycle_time``: its cycle is the phases in order, all
of them in the PackML state Execute (``running``), so counts stay one unit per batch and
the MES counts the batch's output as it counts any unit.

In YAML::

    batch:
      size: 2000
      unit: l
      phases:
        - {name: Charge, duration: {kind: normal, mean: 10m, sd: 1m, min: 5m}}
        - name: Heat
          duration: 25m
          values: {Temperature: {kind: ramp, start: 20, end: 80, sd: 0.5}}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from plant_models.distributions import (
    AnyDistribution,
    Deterministic,
    Distribution,
    Empirical,
    Exponential,
    Lognormal,
    Normal,
    Triangular,
    Uniform,
    is_nonnegative,
    spread,
)

if TYPE_CHECKING:
    from plant_models.schema import Loc, WorkUnit

PHASE_NUMBER = "PhaseNumber"
"""A batch unit's process value that is its running phase's number in the recipe (1-based;
0 between batches), added by the twin: a work unit's own value may not take the name."""

PhaseName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")]
"""A phase's name: a letter, then letters, digits, ``_`` or ``-`` (``Charge``, ``WetMass``)."""


class Ramp(BaseModel):
    """A set point ramp over the phase: ``start`` at the phase's start, ``end`` at its
    planned end (held there if the phase runs longer, e.g. after a breakdown), plus normal
    noise with standard deviation ``sd``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ramp"]
    start: float
    end: float
    sd: Annotated[float, Field(ge=0)] = 0.0

    def bounds(self) -> tuple[float, float]:
        """Where nearly all samples lie: the ramp's span +/- 3 sd."""
        return min(self.start, self.end) - 3 * self.sd, max(self.start, self.end) + 3 * self.sd


def _number_is_deterministic(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"kind": "deterministic", "value": value}
    return value


PhaseValue = Annotated[
    Deterministic | Exponential | Normal | Lognormal | Triangular | Uniform | Empirical | Ramp,
    Field(discriminator="kind"),
    BeforeValidator(_number_is_deterministic),
]
"""What a process value does during a phase: any distribution, or a ``ramp``."""


class Phase(BaseModel):
    """One phase of the batch: its name, its duration, its process values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: PhaseName
    duration: Distribution
    values: dict[str, PhaseValue] = Field(default_factory=dict)
    """Process value name (one of the work unit's ``process_values``) -> its behaviour."""


class Batch(BaseModel):
    """The batch a work unit processes per unit of flow, and its phases in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: Annotated[float, Field(gt=0)]
    """The batch quantity (ISA-88 batch size) of one unit through this work unit."""
    unit: Annotated[str, Field(min_length=1, max_length=20)]
    """The engineering unit of ``size`` (kg, l...)."""
    phases: Annotated[list[Phase], Field(min_length=1, max_length=64)]
    """In recipe order; names unique (``batch_problems``)."""

    def mean_duration(self) -> float:
        """The batch's mean time in the work unit (its phases' means added up)."""
        return sum(p.duration.mean() for p in self.phases)


def value_bounds(value: AnyDistribution | Ramp) -> tuple[float, float]:
    """Where nearly all of a phase value's samples lie."""
    return value.bounds() if isinstance(value, Ramp) else spread(value)


def batch_problems(wu: WorkUnit, wloc: Loc, bad: Callable[[Loc, str], None]) -> None:
    """Report what is wrong with ``wu``'s batch (its location ``wloc``) through ``bad``:
    a phase name used twice, negative or zero durations, phase values of process values
    the work unit does not have, outside their ``eu_range``, or of a value an inspection
    characteristic reads."""
    batch = wu.batch
    if batch is None:
        return
    values = {pv.name: pv for pv in wu.process_values}
    for pi, own in enumerate(wu.process_values):
        if own.name == PHASE_NUMBER:
            bad(
                (*wloc, "process_values", pi, "name"),
                f"{PHASE_NUMBER} is the batch unit's phase number (the twin adds it)",
            )
    seen: set[str] = set()
    for i, phase in enumerate(batch.phases):
        ploc: Loc = (*wloc, "batch", "phases", i)
        if phase.name in seen:
            bad((*ploc, "name"), f"a second phase {phase.name!r}: phase names must be unique")
        seen.add(phase.name)
        if not is_nonnegative(phase.duration):
            bad((*ploc, "duration"), "a duration cannot be negative")
        for name, value in phase.values.items():
            vloc: Loc = (*ploc, "values", name)
            pv = values.get(name)
            if pv is None:
                known = ", ".join(sorted(values)) or "none"
                bad(vloc, f"{wu.code} has no process value {name!r} (it has: {known})")
                continue
            if pv.characteristic is not None:
                # Its distribution per product is what the spec-limit check (Cpk) judges; a
                # phase's own would bypass it.
                bad(
                    vloc,
                    f"{name} feeds the inspection characteristic {pv.characteristic!r}: its "
                    "values come from its own distribution, not from a phase",
                )
                continue
            if pv.eu_range is not None:
                low, high = value_bounds(value)
                if low < pv.eu_range[0] or high > pv.eu_range[1]:
                    bad(
                        vloc,
                        f"{name} would range over [{low:g}, {high:g}] {pv.unit}".rstrip()
                        + f" in phase {phase.name}, outside its eu_range "
                        f"[{pv.eu_range[0]:g}, {pv.eu_range[1]:g}]",
                    )
    if batch.mean_duration() <= 0:
        bad((*wloc, "batch", "phases"), "the phases' mean durations must add up to > 0")
