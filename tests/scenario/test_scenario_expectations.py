"""Expectations are judged on plain observations, and each result says why."""

from __future__ import annotations

from plant_models.scenario import Scenario
from plant_models.scenario_yaml import load_text
from twin.scenario.expectations import Observed, check_all
from twin.scenario.reconcile import Records, UnitRecord, reconcile
from twin.scenario.report import DeviationOutcome, EventCounts, KpiRecord, LatencySummary

SCENARIO = """\
name: x
plant: bottling_line
duration: 1h
timeline:
  - {type: wrong_lot, name: wl, at: 10m, lot: LOT-X}
  - {type: expired_lot, name: ex, at: 10m, lot: LOT-E}
expectations:
  - {type: all_orders_completed}
  - {type: order_state, order: JO-2, state: held}
  - {type: deviation_refused, deviation: wl, rule: MATERIAL_NOT_ON_BOM}
  - {type: deviation_refused, deviation: ex, rule: LOT_EXPIRED}
  - {type: oee, line: BTL1, min: 0.6}
  - {type: reconciliation_exact}
  - {type: events, max_lost: 0}
  - {type: api_latency, p95_ms: 100}
"""


def _observed() -> Observed:
    rec = reconcile(
        Records(work_units={"F": UnitRecord(good=5)}), Records(work_units={"F": UnitRecord(good=5)})
    )
    return Observed(
        order_ids=["JO-1", "JO-2"],
        order_states={"JO-1": "completed", "JO-2": "held"},
        lot_states={},
        deviations=[
            DeviationOutcome(
                name="wl",
                type="wrong_lot",
                at=600,
                target="LOT-X",
                outcome="refused",
                rule="MATERIAL_NOT_ON_BOM",
                message="not on BOM",
                recorded=True,
            ),
            DeviationOutcome(
                name="ex",
                type="expired_lot",
                at=600,
                target="LOT-E",
                outcome="accepted",
                message="consumed 1",
            ),
        ],
        kpis=[KpiRecord(scope="line", id="BTL1", source="mes", oee=0.55)],
        reconciliation=rec,
        events=EventCounts(sent=10, ingested=10, lost=0, duplicated=0),
        latency=LatencySummary(count=4, p50_ms=5, p95_ms=40, p99_ms=60),
    )


def test_each_expectation_passes_or_fails_with_its_reason() -> None:
    sc = load_text(SCENARIO, Scenario)
    results = {r.name: r for r in check_all(sc.expectations, _observed())}
    verdicts = {name: r.passed for name, r in results.items()}
    assert verdicts == {
        "all orders completed": False,
        "order JO-2 is held": True,
        "deviation wl refused or caught (MATERIAL_NOT_ON_BOM)": True,
        "deviation ex refused or caught (LOT_EXPIRED)": False,
        "OEE of BTL1 within bounds": False,
        "reconciliation exact": True,
        "events": True,
        "api latency": True,
    }
    assert results["all orders completed"].detail == "1 of 2 completed; not completed: JO-2 (held)"
    assert (
        results["deviation ex refused or caught (LOT_EXPIRED)"].detail
        == "deviation ex: accepted: consumed 1"
    )
    assert "OEE of line BTL1 = 0.55, expected within [0.6, inf]" in (
        results["OEE of BTL1 within bounds"].detail
    )


def test_run_problems_become_failing_results() -> None:
    obs = _observed()
    obs.problems.append("the MES did not come back after its restart")
    results = check_all([], obs)
    assert [(r.passed, r.detail) for r in results] == [
        (False, "the MES did not come back after its restart")
    ]


def test_a_refusal_missing_from_the_audit_trail_fails_the_expectation() -> None:
    sc = load_text(SCENARIO, Scenario)
    obs = _observed()
    obs.deviations[0].recorded = False
    result = next(r for r in check_all(sc.expectations, obs) if "wl" in r.name)
    assert not result.passed
    assert "not in the MES's audit trail" in result.detail


def test_an_oee_built_on_an_effectiveness_above_100_percent_fails_its_expectation() -> None:
    """ISO 22400-2:2014 clause 6: effectiveness = PRU x PQ / APT is at most 1; an OEE in
    bounds because a wrong PRU inflates it proves nothing."""
    sc = load_text(SCENARIO, Scenario)
    obs = _observed()
    obs.kpis = [
        KpiRecord(
            scope="line",
            id="BTL1",
            source="mes",
            oee=0.7,
            performance=1.2,
            master_data_errors=["master-data error: effectiveness of line BTL1 is 120.0%"],
        )
    ]
    result = next(r for r in check_all(sc.expectations, obs) if r.type == "oee")
    assert not result.passed
    assert "OEE of line BTL1 = 0.7" in result.detail
    assert "master-data error: effectiveness of line BTL1 is 120.0%" in result.detail


def test_events_are_not_checked_after_a_reconnection_the_bench_did_not_cause() -> None:
    """The collector resynchronised from current values after losing the server on its
    own: changes of that gap never became events, so '0 lost' would flatter the MES."""
    sc = load_text(SCENARIO, Scenario)
    observed = _observed()
    observed.events_unverified = "the collector lost the server once"
    events = next(r for r in check_all(sc.expectations, observed) if r.name == "events")
    assert (events.passed, events.status) == (False, "not_checked")
    assert "lost the server once" in events.detail
