"""Custom expectations (issue 19): genealogy link present/absent, labour hours per job
order, audit entries, SPC rules, signatures, a state at a time, and the safe expression
language over the run's figures. Plain data: under 1 s."""

from __future__ import annotations

import pytest
from test_scenario_expectations import _observed

from plant_models.expression import ExpressionError, evaluate, parse
from plant_models.scenario import Scenario
from plant_models.scenario_yaml import DocumentError, load_text
from twin.scenario.custom_expectations import state_histories
from twin.scenario.expectations import Observed, check_all
from twin.scenario.reconcile import Records, reconcile
from twin.scenario.report import ReconciliationRow
from twin.scenario.sut import AuditRecord, SignatureRecord, StateChange, StateHistory

SCENARIO = """\
name: x
plant: bottling_line
duration: 1h
timeline:
  - {type: wrong_lot, name: wl, at: 10m, lot: LOT-X}
  - {type: expired_lot, name: ex, at: 10m, lot: LOT-E}
expectations:
  - {type: genealogy_link, from_lot: RM-1, to_lot: FG-1}
  - {type: genealogy_link, from_lot: RM-2, to_lot: FG-1, present: false}
  - {type: genealogy_link, from_lot: RM-9, to_lot: FG-1}
  - {type: labour_hours, order: JO-1, min: 1, max: 3}
  - {type: labour_hours, order: JO-2, min: 1}
  - {type: expression, expr: "events.lost == 0 and kpi('BTL1', 'oee') > 0.5"}
  - {type: expression, expr: "deviations.refused / deviations.injected >= 1"}
  - {type: expression, expr: "latency.max_ms < 100"}
  - {type: expression, expr: "labour('JO-1') - 2 == 0.5 and orders.completed == 1"}
"""


def _observed_with_records() -> Observed:
    """The plain observations, with a genealogy edge RM-1 -> FG-1 and 2.5 labour hours on
    JO-1 in the MES's records."""
    obs = _observed()
    edges = {("RM-1", "FG-1")}
    obs.reconciliation = reconcile(
        Records(work_units={}, genealogy=edges), Records(work_units={}, genealogy=edges)
    )
    obs.reconciliation.rows.append(
        ReconciliationRow(
            entity="job_order",
            id="JO-1",
            quantity="labour hours",
            twin=2.5,
            mes=2.5,
            difference=0.0,
            matches=True,
        )
    )
    return obs


def test_each_custom_kind_passes_or_fails_with_its_reason() -> None:
    results = check_all(load_text(SCENARIO, Scenario).expectations, _observed_with_records())
    got = [(r.passed, r.detail) for r in results]
    assert got[0] == (True, "the MES's genealogy holds RM-1 -> FG-1; expected it holds")
    assert got[1][0] is True and got[2] == (
        False,
        "the MES's genealogy does not hold RM-9 -> FG-1; expected it holds",
    )
    assert got[3] == (True, "labour on job order JO-1 = 2.5 h (MES), expected within [1, 3]")
    assert got[4][0] is False and "JO-2 = 0 h" in got[4][1]
    # OEE of BTL1 is 0.55 in the observations, nothing lost.
    assert got[5] == (True, "events.lost == 0 and kpi('BTL1', 'oee') > 0.5 is true")
    # One of two deviations refused, the other accepted.
    assert got[6] == (False, "deviations.refused / deviations.injected >= 1 is false")
    assert got[7][0] is False and "latency.max_ms has no value in this run" in got[7][1]
    assert got[8][0] is True, got[8][1]
    assert results[0].evidence == ["#/reconciliation/rows/0"]


def test_a_genealogy_link_is_traced_through_intermediate_lots() -> None:
    # ISA-95 genealogy at any depth: a raw lot that went into a granulate that went into
    # the batch is in the batch; "never enters the batch" must fail on it, not pass
    # because no direct edge exists.
    obs = _observed()
    edges = {("RM-2", "GRAN-1"), ("GRAN-1", "FG-1"), ("RM-1", "FG-1")}
    obs.reconciliation = reconcile(
        Records(work_units={}, genealogy=edges), Records(work_units={}, genealogy=edges)
    )
    results = check_all(load_text(SCENARIO, Scenario).expectations[:3], obs)
    assert (results[1].passed, results[1].detail) == (
        False,
        "the MES's genealogy holds RM-2 -> FG-1 (through GRAN-1); expected it does not hold",
    )
    rows = [obs.reconciliation.rows[int(e.rsplit("/", 1)[1])].id for e in results[1].evidence]
    assert rows == ["RM-2 -> GRAN-1", "GRAN-1 -> FG-1"]
    assert results[0].passed and not results[2].passed


@pytest.mark.parametrize(
    ("expr", "refused"),
    [
        ("__import__('os').system('true')", "only the functions"),
        ("events.lost.__class__", "unknown figure"),
        ("[x for x in orders.total]", "ListComp not allowed"),
        ("events.lost ** 99999", "BinOp not allowed"),
        ("kpi(id='BTL1', name='oee')", "keyword arguments"),
        ("lambda: 1", "Lambda not allowed"),
        ("events.lost == ", "not an expression"),
    ],
)
def test_the_expression_language_refuses_anything_but_figures_arithmetic_and_comparisons(
    expr: str, refused: str
) -> None:
    with pytest.raises(ExpressionError, match=refused):
        parse(expr)


def test_a_refused_expression_names_the_scenario_file_and_line() -> None:
    text = SCENARIO.replace("latency.max_ms < 100", "open('/etc/passwd')")
    with pytest.raises(DocumentError) as info:
        load_text(text, Scenario, name="sc.yaml")
    (problem,) = [str(p) for p in info.value.problems]
    assert problem.startswith("sc.yaml:15: expectations.7.expression.expr:")


def test_an_expression_on_figures_the_adapter_cannot_measure_is_not_checked() -> None:
    obs = _observed_with_records()
    obs.unavailable = {"event_ingest": "the x adapter offers no collector (event_ingest)"}
    exps = load_text(SCENARIO, Scenario).expectations
    results = check_all(exps, obs)
    assert results[5].status == "not_checked" and not results[5].passed  # uses events.lost
    assert "event_ingest" in results[5].detail
    assert results[6].status == "failed"  # deviations only: still judged


def test_an_audit_entry_of_an_action_is_found_and_cited() -> None:
    text = SCENARIO.split("expectations:")[0] + (
        "expectations:\n"
        "  - {type: audit_entry, action: refused, min_count: 2}\n"
        "  - {type: audit_entry, action: nonconformance.disposed, object: 'lot:LOT-1'}\n"
    )
    exps = load_text(text, Scenario).expectations
    obs = _observed()
    obs.audit_entries = {
        ("refused", None): [AuditRecord("4", "refused", "lot:X", entry_hash="ab")] * 7,
        ("nonconformance.disposed", "lot:LOT-1"): [],
    }
    refused, disposed = check_all(exps, obs)
    assert refused.passed and refused.detail == (
        "7 audit entries of refused in the MES, expected at least 2"
    )
    assert refused.evidence == ["MES audit entry 4 hash ab"] * 5 + ["and 2 more"]
    assert not disposed.passed and "0 audit entries of nonconformance.disposed on lot:LOT-1" in (
        disposed.detail
    )
    obs.unavailable = {"audit_query": "the x adapter offers no searchable audit trail"}
    assert check_all(exps, obs)[0].status == "not_checked"


def test_an_spc_rule_fired_on_a_characteristic_is_counted_per_rule() -> None:
    text = SCENARIO.split("expectations:")[0] + (
        "expectations:\n"
        "  - {type: spc_rule, characteristic: TabletWeight, rule: 1}\n"
        "  - {type: spc_rule, characteristic: TabletWeight, rule: 2, min_count: 3}\n"
        "  - {type: spc_rule, characteristic: Hardness}\n"
    )
    obs = _observed()
    obs.spc = {"TabletWeight": {1: 4, 5: 1}, "Hardness": None}
    one, two, hardness = check_all(load_text(text, Scenario).expectations, obs)
    assert one.passed and one.name == "Nelson rule 1 fired on TabletWeight"
    assert one.detail == (
        "4 results of TabletWeight flagged by Nelson rule 1, expected at least 1 "
        "(flagged per rule: rule 1: 4, rule 5: 1)"
    )
    assert not two.passed and two.detail.startswith("0 results of TabletWeight")
    assert (hardness.passed, hardness.detail) == (
        False,
        "the MES has no inspection characteristic Hardness",
    )


def test_a_signature_with_a_meaning_is_found_and_cited() -> None:
    text = SCENARIO.split("expectations:")[0] + (
        "expectations:\n"
        "  - {type: signature, meaning: approval}\n"
        "  - {type: signature, meaning: review, object: 'nonconformance:NC-1'}\n"
    )
    obs = _observed()
    obs.signatures = [
        SignatureRecord("31", "nonconformance:NC-1", "approval", "Signed by Q (QA-1)", "b1"),
    ]
    approval, review = check_all(load_text(text, Scenario).expectations, obs)
    assert approval.passed and approval.evidence == [
        "MES audit entry 31 on nonconformance:NC-1: Signed by Q (QA-1) (binding hash b1)"
    ]
    assert not review.passed and review.detail == (
        "0 signatures meaning review on nonconformance:NC-1 recorded by the MES, expected at "
        "least 1 (meanings recorded: approval)"
    )


def test_evaluation_reports_division_by_zero_and_bad_calls() -> None:
    figures = {"orders.total": 0.0, "orders.completed": 0.0}
    with pytest.raises(ExpressionError, match="division by zero"):
        evaluate("orders.completed / orders.total > 0", figures, {})
    with pytest.raises(ExpressionError, match="kpi"):
        evaluate("kpi('X') > 0", figures, {"kpi": lambda i, n: 1.0})
    assert evaluate("1 < orders.total + 2 <= 2 and not orders.total", figures, {}) is True


STATE_AT = SCENARIO.split("expectations:")[0] + (
    "expectations:\n"
    "  - {type: state_at, order: JO-1, at: 1h, state: running}\n"
    "  - {type: state_at, order: JO-1, at: 1h30m, state: running}\n"
    "  - {type: state_at, order: JO-1, at: 1m, state: released}\n"
    "  - {type: state_at, lot: LOT-9, at: 2h, state: on_hold}\n"
)


def test_a_state_at_a_time_is_read_from_the_mes_state_history() -> None:
    exps = load_text(STATE_AT, Scenario).expectations
    obs = _observed()
    obs.histories = {
        ("job_order", "JO-1"): [
            StateChange(600.0, "running", "MES audit entry 7 (operation.started) hash a"),
            StateChange(5000.0, "held", "MES audit entry 9 (job_order.hold) hash b"),
        ],
        ("lot", "LOT-9"): None,
    }
    running, held, before, unknown = check_all(exps, obs)
    assert running.name == "job order JO-1 was running at 1h"
    assert (running.passed, running.detail) == (
        True,
        "job order JO-1 was running at 1h (3600 s), since 10m in the MES's state history; "
        "expected running",
    )
    assert running.evidence == ["MES audit entry 7 (operation.started) hash a"]
    assert (held.passed, held.evidence) == (False, ["MES audit entry 9 (job_order.hold) hash b"])
    assert "was held at 1h30m" in held.detail
    # Before the first change the MES recorded, nothing is known: failed, never passed.
    assert (before.passed, before.detail) == (
        False,
        "the MES recorded no state of job order JO-1 at or before 1m (its first: running at "
        "10m); expected released at 1m (60 s)",
    )
    assert not unknown.passed and unknown.detail.startswith("lot LOT-9 is unknown to the MES")
    obs.unavailable = {"state_history": "the x adapter offers no history (state_history)"}
    assert {r.status for r in check_all(exps, obs)} == {"not_checked"}


def test_state_histories_are_read_only_from_an_adapter_that_keeps_them() -> None:
    exps = load_text(STATE_AT, Scenario).expectations

    class Keeps:
        def state_history(self, kind: str, ident: str) -> list[StateChange] | None:
            return [StateChange(0.0, f"{kind}:{ident}", "e")]

    assert isinstance(Keeps(), StateHistory)
    got = state_histories(Keeps(), exps)
    assert sorted(got) == [("job_order", "JO-1"), ("lot", "LOT-9")]
    assert state_histories(object(), exps) == {}
    both = STATE_AT.replace("order: JO-1, at: 1h,", "order: JO-1, lot: L, at: 1h,")
    with pytest.raises(DocumentError, match="give order or lot"):
        load_text(both, Scenario)
