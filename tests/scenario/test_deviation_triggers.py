"""A caught drift carries the MES's own reason for the hold (never a bench-made rule),
and a signature deviation on ``on_hold`` finds the hold on its order (issue 13, item 7).
Plain data with stand-in holds: under 1 s."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from plant_models.scenario import DeviationRefused, ProcessDrift, UncertifiedOperator
from twin.scenario.deviations import DeviationInjector
from twin.scenario.expectations import Observed, check
from twin.scenario.report import DeviationOutcome
from twin.scenario.sut import Answer


class Holds:
    """QualityHolds only: NC-1 holds JO-1 and its lot."""

    def held(self) -> list[str]:
        return ["nc:NC-1"]

    def holds_of(self, target: str) -> list[str]:
        return ["job_order:JO-1", "lot:L-1"] if target == "nc:NC-1" else []

    def dispose(
        self,
        target: str,
        person: str,
        password: str,
        decision: str,
        reason: str,
        at: float | None = None,
    ) -> Answer:  # pragma: no cover - not asked here
        raise NotImplementedError


class HoldsWithReasons(Holds):
    def hold_reason(self, target: str) -> tuple[str, str] | None:
        return ("out_of_spec", "weight: value 521 is above USL 515")


def _caught(sut: object) -> DeviationOutcome:
    drift = ProcessDrift(
        type="process_drift", name="drift", at=0, order="JO-1", work_unit="W", value="V", rate=1
    )
    outcome = DeviationOutcome(
        name="drift", type="process_drift", at=0, target="W.V", outcome="accepted"
    )
    state = SimpleNamespace(watch_holds=[(drift, outcome)])
    scenario = SimpleNamespace(system_under_test=SimpleNamespace(adapter="toy"))
    ctx = SimpleNamespace(sut=sut, state=state, scenario=scenario)
    DeviationInjector(cast(Any, ctx)).watch_holds(60.0)
    assert state.watch_holds == []
    return outcome


def _verdict(outcome: DeviationOutcome) -> tuple[bool, str]:
    exp = DeviationRefused(
        type="deviation_refused", deviation="drift", rule="out_of_spec", recorded=False
    )
    result = check(exp, cast(Observed, SimpleNamespace(deviations=[outcome])))
    return result.passed, result.detail


def test_a_caught_drift_carries_the_reason_the_mes_named() -> None:
    outcome = _caught(HoldsWithReasons())
    assert (outcome.outcome, outcome.rule) == ("caught", "out_of_spec")
    assert outcome.message == (
        "nonconformance NC-1 holds job_order:JO-1, lot:L-1 (seen at 60 s): "
        "weight: value 521 is above USL 515"
    )
    assert _verdict(outcome)[0]


def test_a_caught_drift_without_the_mes_reason_has_no_rule_and_says_why() -> None:
    outcome = _caught(Holds())
    assert (outcome.outcome, outcome.rule) == ("caught", None)
    assert "the MES named no reason (the toy adapter offers no" in outcome.message
    assert "(hold_reasons)" in outcome.message
    passed, detail = _verdict(outcome)
    assert not passed and "caught with rule None, expected out_of_spec" in detail


def test_on_hold_fires_on_a_hold_of_its_order_only() -> None:
    def sign(order: str) -> UncertifiedOperator:
        return UncertifiedOperator(
            type="uncertified_operator",
            name="s",
            when="on_hold",
            order=order,
            person="P",
            action="sign",
        )

    injector = DeviationInjector(cast(Any, SimpleNamespace(sut=Holds())))
    assert injector._held(sign("JO-1")) == ("JO-1", "")
    assert injector._held(sign("JO-2")) is None
