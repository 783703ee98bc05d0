"""Statistical process control on one inspection characteristic: pure rules, no I/O.

An individuals chart (I chart) per characteristic: each measurement result is one point.
Control limits are the centre line +/- 3 sigma, where sigma is either set by the user
(a baseline from a validated process) or estimated from the first N in-control points with
the average moving range (sigma = MR-bar / d2, d2 = 1.128 for subgroups of two), the usual
estimate for individuals charts (Montgomery, *Introduction to Statistical Quality Control*,
clause 6.4 "Control charts for individual measurements").

The run rules are L. S. Nelson's (Journal of Quality Technology 16(4), 1984, "The Shewhart
Control Chart - Tests for Special Causes"), rules 1 to 4:

1. one point more than 3 sigma from the centre line;
2. nine points in a row on the same side of the centre line;
3. six points in a row steadily increasing or steadily decreasing;
4. fourteen points in a row alternating up and down.

Each rule is evaluated for the *latest* point of a history (the point that completes the
pattern), which is what an MES does as results arrive one by one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

#: Bias correction of the moving range of two consecutive points (ASTM E2587, table 1).
D2_FOR_MOVING_RANGE_OF_TWO = 1.128

#: Fewest points from which limits may be estimated: fewer give a useless sigma.
MIN_BASELINE_POINTS = 2


class NelsonRule(IntEnum):
    """Nelson's tests for special causes, by number."""

    BEYOND_3_SIGMA = 1
    NINE_ON_ONE_SIDE = 2
    SIX_TRENDING = 3
    FOURTEEN_ALTERNATING = 4

    @property
    def description(self) -> str:
        return _RULE_TEXT[self]


_RULE_TEXT = {
    NelsonRule.BEYOND_3_SIGMA: "one point beyond 3 sigma from the centre line",
    NelsonRule.NINE_ON_ONE_SIDE: "9 points in a row on the same side of the centre line",
    NelsonRule.SIX_TRENDING: "6 points in a row steadily increasing or decreasing",
    NelsonRule.FOURTEEN_ALTERNATING: "14 points in a row alternating up and down",
}

#: Points needed in the history before a rule can fire.
RUN_LENGTH = {
    NelsonRule.BEYOND_3_SIGMA: 1,
    NelsonRule.NINE_ON_ONE_SIDE: 9,
    NelsonRule.SIX_TRENDING: 6,
    NelsonRule.FOURTEEN_ALTERNATING: 14,
}


class SpcError(ValueError):
    """Control limits or a history that SPC cannot work with."""


@dataclass(frozen=True)
class ControlLimits:
    """Centre line and sigma of an individuals chart; limits are centre +/- 3 sigma."""

    centre: float
    sigma: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.centre) and math.isfinite(self.sigma)):
            raise SpcError("control limits must be finite numbers")
        if self.sigma <= 0:
            raise SpcError(f"sigma must be > 0, got {self.sigma}")

    @property
    def ucl(self) -> float:
        """Upper control limit."""
        return self.centre + 3 * self.sigma

    @property
    def lcl(self) -> float:
        """Lower control limit."""
        return self.centre - 3 * self.sigma


@dataclass(frozen=True)
class SpecLimits:
    """Specification limits of an inspection characteristic (either side may be open)."""

    lsl: float | None = None
    usl: float | None = None

    def __post_init__(self) -> None:
        if self.lsl is not None and self.usl is not None and self.lsl > self.usl:
            raise SpcError(f"LSL {self.lsl} is above USL {self.usl}")

    def violation(self, value: float) -> str | None:
        """Why ``value`` is out of specification, or ``None`` when it is in spec.

        The limits themselves are in specification (a value equal to USL passes).
        """
        if not math.isfinite(value):
            return f"value {value} is not a finite number"
        if self.lsl is not None and value < self.lsl:
            return f"value {value:g} is below LSL {self.lsl:g}"
        if self.usl is not None and value > self.usl:
            return f"value {value:g} is above USL {self.usl:g}"
        return None


def limits_from_points(values: Sequence[float]) -> ControlLimits:
    """Individuals-chart limits from points: centre = mean, sigma = MR-bar / d2.

    Raises ``SpcError`` with fewer than two points or when all points are equal (a moving
    range of zero gives no sigma: such a process cannot be charted).
    """
    if len(values) < MIN_BASELINE_POINTS:
        raise SpcError(f"need at least {MIN_BASELINE_POINTS} points to estimate limits")
    centre = math.fsum(values) / len(values)
    moving_ranges = [abs(b - a) for a, b in itertools.pairwise(values)]
    mr_bar = math.fsum(moving_ranges) / len(moving_ranges)
    if mr_bar == 0:
        raise SpcError("all baseline points are equal: sigma cannot be estimated")
    return ControlLimits(centre=centre, sigma=mr_bar / D2_FOR_MOVING_RANGE_OF_TWO)


def limits_from_first_in_control(
    values: Sequence[float], n: int, spec: SpecLimits | None = None
) -> ControlLimits | None:
    """Limits from the first ``n`` in-control points of ``values`` (Phase I), or ``None``.

    Points out of specification are never part of a baseline. From the first ``n``
    candidates limits are estimated; candidates beyond those limits (rule 1) are dropped
    and the window refilled from later points, until ``n`` candidates all lie within the
    limits they produce. ``None`` means there are not yet enough in-control points.
    """
    if n < MIN_BASELINE_POINTS:
        raise SpcError(f"baseline size must be at least {MIN_BASELINE_POINTS}, got {n}")
    candidates = [v for v in values if spec is None or spec.violation(v) is None]
    excluded: set[int] = set()
    while True:
        window = [i for i in range(len(candidates)) if i not in excluded][:n]
        if len(window) < n:
            return None
        points = [candidates[i] for i in window]
        try:
            limits = limits_from_points(points)
        except SpcError:
            # A flat window has no sigma yet; more (varying) points may give one.
            if len(candidates) - len(excluded) > n:
                excluded.add(window[0])
                continue
            return None
        outliers = [i for i in window if abs(candidates[i] - limits.centre) > 3 * limits.sigma]
        if not outliers:
            return limits
        excluded.update(outliers)


def violated_rules(history: Sequence[float], limits: ControlLimits) -> list[NelsonRule]:
    """The Nelson rules (1-4) that the latest point of ``history`` violates.

    ``history`` is in time order, oldest first; only the tail that a rule needs is read.
    A point exactly on the centre line belongs to neither side (it breaks a rule-2 run);
    an equal neighbour breaks a trend (rule 3) and an alternation (rule 4).
    """
    if not history:
        return []
    found: list[NelsonRule] = []
    last = history[-1]
    if abs(last - limits.centre) > 3 * limits.sigma:
        found.append(NelsonRule.BEYOND_3_SIGMA)
    if _same_side(history, limits.centre, RUN_LENGTH[NelsonRule.NINE_ON_ONE_SIDE]):
        found.append(NelsonRule.NINE_ON_ONE_SIDE)
    if _trending(history, RUN_LENGTH[NelsonRule.SIX_TRENDING]):
        found.append(NelsonRule.SIX_TRENDING)
    if _alternating(history, RUN_LENGTH[NelsonRule.FOURTEEN_ALTERNATING]):
        found.append(NelsonRule.FOURTEEN_ALTERNATING)
    return found


def _same_side(history: Sequence[float], centre: float, run: int) -> bool:
    if len(history) < run:
        return False
    tail = history[-run:]
    return all(v > centre for v in tail) or all(v < centre for v in tail)


def _steps(history: Sequence[float], run: int) -> list[float] | None:
    if len(history) < run:
        return None
    tail = history[-run:]
    return [b - a for a, b in itertools.pairwise(tail)]


def _trending(history: Sequence[float], run: int) -> bool:
    steps = _steps(history, run)
    if steps is None:
        return False
    return all(s > 0 for s in steps) or all(s < 0 for s in steps)


def _alternating(history: Sequence[float], run: int) -> bool:
    steps = _steps(history, run)
    if steps is None or any(s == 0 for s in steps):
        return False
    return all((a > 0) != (b > 0) for a, b in itertools.pairwise(steps))
