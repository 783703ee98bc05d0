"""Traceability (issue 19): expectations name the requirements they verify and a risk
class; the report carries the matrix requirement -> expectations -> evidence -> verdict in
report.json, report.html and junit.xml. Plain data, no run: under 1 s."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import jsonschema
import pytest
from test_scenario_expectations import _observed
from test_scenario_report import sample_report

from plant_models.scenario import Scenario, load_scenario
from plant_models.scenario_yaml import DocumentError, load_text
from twin.scenario.expectations import check_all
from twin.scenario.html import render_html
from twin.scenario.junit import junit_xml
from twin.scenario.report import ExpectationResult, load_schema
from twin.scenario.traceability import trace_matrix

SCENARIO = """\
name: x
plant: bottling_line
duration: 1h
timeline:
  - {type: wrong_lot, name: wl, at: 10m, lot: LOT-X}
  - {type: expired_lot, name: ex, at: 10m, lot: LOT-E}
expectations:
  - {type: deviation_refused, deviation: wl, requirement: URS-010, risk: high}
  - {type: deviation_refused, deviation: ex, requirement: [URS-010, URS-011], risk: medium}
  - {type: oee, line: BTL1, min: 0.5, requirement: URS-050, risk: low}
  - {type: reconciliation_exact}
"""


def test_requirements_group_expectations_and_one_failure_fails_the_requirement() -> None:
    results = check_all(load_text(SCENARIO, Scenario).expectations, _observed())
    assert results[1].requirements == ["URS-010", "URS-011"] and results[1].risk == "medium"
    assert results[0].evidence == ["#/deviations/0"] and results[2].evidence == ["#/kpis/0"]
    rows = {r.requirement: r for r in trace_matrix(results)}
    assert list(rows) == ["URS-010", "URS-011", "URS-050"]
    # wl was refused, ex accepted: URS-010 rests on both, so it fails; its risk is the highest.
    assert rows["URS-010"].verdict == "failed" and rows["URS-010"].risk == "high"
    assert rows["URS-010"].evidence == ["#/deviations/0", "#/deviations/1"]
    assert rows["URS-011"].verdict == "failed"
    assert rows["URS-050"].verdict == "passed" and rows["URS-050"].expectations == [
        "OEE of BTL1 within bounds"
    ]


def test_a_requirement_not_checked_is_never_passed() -> None:
    checked = ExpectationResult(
        name="a", type="t", passed=True, detail="", requirements=["URS-1", "URS-2"]
    )
    unchecked = ExpectationResult(
        name="b",
        type="t",
        passed=True,
        status="not_checked",
        detail="not checked: no capability",
        requirements=["URS-1"],
    )
    failed = ExpectationResult(name="c", type="t", passed=False, detail="", requirements=["URS-2"])
    rows = {r.requirement: r.verdict for r in trace_matrix([checked, unchecked, failed])}
    assert rows == {"URS-1": "not_checked", "URS-2": "failed"}


def test_a_bad_requirement_id_or_risk_class_names_file_and_line() -> None:
    text = SCENARIO.replace("requirement: URS-050, risk: low", "requirement: URS 50, risk: huge")
    with pytest.raises(DocumentError) as info:
        load_text(text, Scenario, name="sc.yaml")
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 2 and all(
        p.startswith("sc.yaml:10: expectations.2.oee.") for p in problems
    )
    assert "requirement.0" in problems[0] and "risk" in problems[1]


def test_the_matrix_is_in_report_json_html_and_junit_properties() -> None:
    report = sample_report(passed=False)
    for exp, req in zip(report.expectations, (["URS-001"], ["URS-001", "URS-002"]), strict=True):
        exp.requirements = req
        exp.risk = "high"
        exp.evidence = ["#/orders"] if req == ["URS-001"] else ["#/reconciliation"]
    report.traceability = trace_matrix(report.expectations)
    jsonschema.validate(report.model_dump(mode="json"), load_schema())
    html = render_html(report)
    assert "<h2>Traceability" in html and "<td>URS-002</td><td>high</td>" in html
    suite = ET.fromstring(junit_xml(report)).find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props["requirement:URS-001"] == "failed: all orders completed; reconciliation exact"
    assert props["requirement:URS-002"] == "failed: reconciliation exact"
    case = suite.findall("testcase")[1]
    case_props = [(p.get("name"), p.get("value")) for p in case.findall("properties/property")]
    assert case_props == [
        ("requirement", "URS-001"),
        ("requirement", "URS-002"),
        ("risk", "high"),
        ("evidence", "#/reconciliation"),
    ]


def test_the_shipped_tablet_scenario_traces_every_expectation_to_a_requirement() -> None:
    sc = load_scenario("plant_models/scenarios/tablet_batch_deviations.yaml")
    assert sc.expectations and all(e.requirement and e.risk for e in sc.expectations)
