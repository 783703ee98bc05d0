"""Checking one measurement result against its characteristic: spec limits, then SPC.

Enforcement rule 5 of PRODUCT.md: a result out of specification, or one that violates an
SPC rule, puts the affected lot(s) and the job order on hold. This module only decides
*whether* a result is a deviation and why; the service opens the nonconformance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mes_core.quality.spc import ControlLimits, NelsonRule, SpecLimits, violated_rules


@dataclass(frozen=True)
class Verdict:
    """What one measurement result means for quality."""

    out_of_spec: str | None = None
    rules: tuple[NelsonRule, ...] = field(default_factory=tuple)

    @property
    def deviation(self) -> bool:
        """True when the result must open a nonconformance (rule 5)."""
        return self.out_of_spec is not None or bool(self.rules)

    def describe(self, characteristic: str) -> str:
        """One sentence naming the characteristic and every reason."""
        reasons = []
        if self.out_of_spec:
            reasons.append(f"out of specification ({self.out_of_spec})")
        reasons.extend(f"SPC Nelson rule {r.value}: {r.description}" for r in self.rules)
        if not reasons:
            return f"{characteristic}: in specification and in control"
        return f"{characteristic}: " + "; ".join(reasons)


def judge(
    value: float,
    spec: SpecLimits,
    history: Sequence[float],
    limits: ControlLimits | None,
) -> Verdict:
    """Judge ``value`` (the newest point; ``history`` holds the earlier ones, oldest first).

    Without control limits (no baseline yet) only the specification is checked.
    """
    reason = spec.violation(value)
    rules: tuple[NelsonRule, ...] = ()
    if limits is not None:
        rules = tuple(violated_rules([*history, value], limits))
    return Verdict(out_of_spec=reason, rules=rules)
