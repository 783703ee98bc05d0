"""Probability distributions of a plant model (cycle times, failures, repairs, values).

One ``Distribution`` union, discriminated by ``kind``. A bare number in YAML means a
deterministic value, so ``cycle_time: 2.5`` and ``cycle_time: {kind: deterministic,
value: 2.5}`` are the same. Time-valued distributions are in seconds; the engine never lets
a sampled duration go below zero (``normal`` is clipped at ``min``, default 0 for times).
Numbers may be written as durations (``mean: 4h``), which is handy for failures and repairs.

Each model knows its exact ``mean()`` so validation tests and reports can compare the
engine with analytic results.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from plant_models.durations import Duration


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def mean(self) -> float:  # pragma: no cover - overridden by every kind
        raise NotImplementedError


class Deterministic(_Dist):
    """Always ``value``."""

    kind: Literal["deterministic"] = "deterministic"
    value: Duration

    def mean(self) -> float:
        return self.value


class Exponential(_Dist):
    """Exponential with the given ``mean`` (rate 1/mean): memoryless failures, M/M/1."""

    kind: Literal["exponential"]
    mean_: Annotated[Duration, Field(gt=0, alias="mean")]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def mean(self) -> float:
        return self.mean_


class Normal(_Dist):
    """Normal(``mean``, ``sd``), clipped to [``min``, ``max``] where given."""

    kind: Literal["normal"]
    mean_: Annotated[Duration, Field(alias="mean")]
    sd: Annotated[Duration, Field(ge=0)]
    min: Duration | None = None
    max: Duration | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _bounds(self) -> Normal:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be below max")
        return self

    def mean(self) -> float:
        # The clip moves the mean only by a negligible amount for sd << mean - min.
        return self.mean_


class Lognormal(_Dist):
    """Lognormal given by the ``mean`` and ``sd`` of the variable itself (not of its log)."""

    kind: Literal["lognormal"]
    mean_: Annotated[Duration, Field(gt=0, alias="mean")]
    sd: Annotated[Duration, Field(gt=0)]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def log_params(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal."""
        sigma2 = math.log1p((self.sd / self.mean_) ** 2)
        return math.log(self.mean_) - sigma2 / 2.0, math.sqrt(sigma2)

    def mean(self) -> float:
        return self.mean_


class Triangular(_Dist):
    """Triangular on [``low``, ``high``] with the peak at ``mode``."""

    kind: Literal["triangular"]
    low: Duration
    mode: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> Triangular:
        if not (self.low <= self.mode <= self.high) or self.low >= self.high:
            raise ValueError("expected low <= mode <= high and low < high")
        return self

    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3.0


class Uniform(_Dist):
    """Uniform on [``low``, ``high``)."""

    kind: Literal["uniform"]
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.low >= self.high:
            raise ValueError("expected low < high")
        return self

    def mean(self) -> float:
        return (self.low + self.high) / 2.0


class Empirical(_Dist):
    """One of the observed ``values``, with optional relative ``weights`` (default equal)."""

    kind: Literal["empirical"]
    values: Annotated[list[Duration], Field(min_length=1)]
    weights: list[Annotated[float, Field(ge=0)]] | None = None

    @model_validator(mode="after")
    def _weights(self) -> Empirical:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(
                    f"weights has {len(self.weights)} entries, values has {len(self.values)}"
                )
            if sum(self.weights) <= 0:
                raise ValueError("weights must not all be zero")
        return self

    def probabilities(self) -> list[float]:
        if self.weights is None:
            return [1.0 / len(self.values)] * len(self.values)
        total = sum(self.weights)
        return [w / total for w in self.weights]

    def mean(self) -> float:
        return sum(v * p for v, p in zip(self.values, self.probabilities(), strict=True))


def _number_is_deterministic(value: object) -> object:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"kind": "deterministic", "value": value}
    if isinstance(value, dict) and "kind" not in value and set(value) == {"value"}:
        return {"kind": "deterministic", **value}
    return value


Distribution = Annotated[
    Deterministic | Exponential | Normal | Lognormal | Triangular | Uniform | Empirical,
    Field(discriminator="kind"),
    BeforeValidator(_number_is_deterministic),
]
"""Any distribution of a plant model; a bare number means ``deterministic``."""

AnyDistribution = (
    Deterministic | Exponential | Normal | Lognormal | Triangular | Uniform | Empirical
)
"""The plain union, for type hints of code that receives a validated distribution."""


def is_nonnegative(dist: AnyDistribution) -> bool:
    """True when ``dist`` makes sense as a duration: no sample below zero, except a normal
    without ``min``, which the engine clips at zero."""
    if isinstance(dist, Deterministic):
        return dist.value >= 0
    if isinstance(dist, Exponential | Lognormal):
        return True
    if isinstance(dist, Normal):
        return dist.min is None or dist.min >= 0
    if isinstance(dist, Triangular | Uniform):
        return dist.low >= 0
    return min(dist.values) >= 0


def spread(dist: AnyDistribution) -> tuple[float, float]:
    """The interval that holds nearly all draws of ``dist``: its bounds where it has them
    (deterministic, triangular, uniform, empirical; a normal's ``min``/``max``), else
    mean +/- 3 sd (99.73 % of a normal's draws)."""
    if isinstance(dist, Deterministic):
        return dist.value, dist.value
    if isinstance(dist, Triangular | Uniform):
        return dist.low, dist.high
    if isinstance(dist, Empirical):
        return min(dist.values), max(dist.values)
    if isinstance(dist, Normal):
        low, high = dist.mean_ - 3 * dist.sd, dist.mean_ + 3 * dist.sd
        if dist.min is not None:
            low, high = max(low, dist.min), max(high, dist.min)
        if dist.max is not None:
            low, high = min(low, dist.max), min(high, dist.max)
        return low, high
    sd = dist.mean_ if isinstance(dist, Exponential) else dist.sd
    return max(dist.mean_ - 3 * sd, 0.0), dist.mean_ + 3 * sd
