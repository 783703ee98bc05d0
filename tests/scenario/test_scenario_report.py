"""The report: JSON valid against the shipped schema, JUnit one case per expectation, HTML
self-contained."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema

from twin.scenario.html import write_html
from twin.scenario.junit import write_junit
from twin.scenario.reconcile import Records, UnitRecord, reconcile
from twin.scenario.report import (
    EXIT_CODES,
    DeviationOutcome,
    EventCounts,
    ExpectationResult,
    KpiRecord,
    LatencySummary,
    OrderProgress,
    Report,
    ScenarioInfo,
    StateInterval,
    json_schema,
    load_schema,
    write_json,
)


def sample_report(passed: bool = False) -> Report:
    truth = Records(work_units={"FILLER": UnitRecord(good=10, state_seconds={"running": 60.0})})
    mes = Records(work_units={"FILLER": UnitRecord(good=9, state_seconds={"running": 60.0})})
    return Report(
        scenario=ScenarioInfo(
            name="sample", file="sample.yaml", plant="bottling", duration_s=3600, speed="max"
        ),
        seed=1,
        versions={"mestwin": "0.1.0"},
        system_under_test="mes_core REST at http://127.0.0.1:1",
        database="sqlite:///x.db",
        started_at="2026-01-01T00:00:00+00:00",
        wall_time_s=1.5,
        sim_time_s=3600,
        passed=passed,
        expectations=[
            ExpectationResult(
                name="all orders completed",
                type="all_orders_completed",
                passed=True,
                detail="1 of 1 completed",
            ),
            ExpectationResult(
                name="reconciliation exact",
                type="reconciliation_exact",
                passed=passed,
                detail="1 mismatch",
            ),
        ],
        reconciliation=reconcile(truth, mes),
        kpis=[
            KpiRecord(
                scope="line",
                id="L1",
                source="mes",
                availability=0.9,
                performance=0.8,
                quality=0.99,
                oee=0.9 * 0.8 * 0.99,
                basis="good = what left the line at PACKER; time, PRU and pace of FILLER",
            )
        ],
        events=EventCounts(sent=10, ingested=10, lost=0, duplicated=0),
        deviations=[
            DeviationOutcome(
                name="wl",
                type="wrong_lot",
                at=5,
                target="LOT-X",
                outcome="refused",
                rule="material-lot-bom",
                message="no",
            )
        ],
        faults=[],
        orders=[OrderProgress(id="JO-1", product="W", quantity=10, good=9, state="completed")],
        states=[StateInterval(work_unit="FILLER", state="running", start=0, end=60)],
        api_latency=LatencySummary(count=3, p50_ms=2.0, p95_ms=3.0, p99_ms=3.0, max_ms=3.0),
    )


def test_shipped_schema_is_the_one_the_models_generate() -> None:
    assert load_schema() == json.loads(json.dumps(json_schema())), (
        "regenerate with: .venv/bin/python -m twin.scenario.report"
    )


def test_report_json_validates_against_the_shipped_schema(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    write_json(sample_report(), path)
    data = json.loads(path.read_text())
    jsonschema.validate(data, load_schema())
    for key in ("expectations", "reconciliation", "kpis", "events"):
        assert key in data
    assert set(data["expectations"][0]) >= {"name", "passed", "detail"}
    assert data["reconciliation"]["mismatches"] == [
        "work_unit FILLER: good: plant 10, MES 9, difference -1"
    ]


def test_schema_rejects_a_report_without_expectations() -> None:
    data = json.loads(sample_report().model_dump_json())
    del data["expectations"]
    validator = jsonschema.Draft202012Validator(load_schema())
    assert any("expectations" in e.message for e in validator.iter_errors(data))


def test_junit_has_one_testcase_per_expectation_and_failures_say_why(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(sample_report(), path)
    root = ET.parse(path).getroot()
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["all orders completed", "reconciliation exact"]
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "1 mismatch"
    assert root.find("testsuite").get("failures") == "1"  # type: ignore[union-attr]


def test_html_is_self_contained(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_html(sample_report(), path)
    page = path.read_text()
    assert "FAILED" in page
    assert "OEE waterfall, line L1" in page
    assert "line L1: good = what left the line at PACKER; time, PRU and pace of FILLER" in page
    assert "work_unit FILLER: good: plant 10, MES 9, difference -1" in page
    # plotly.js inlined exactly once, and no script loaded from the network
    assert page.count("plotly.js v") >= 1
    assert '<script src="http' not in page


def test_effectiveness_above_100_percent_is_flagged_as_a_master_data_error(
    tmp_path: Path,
) -> None:
    """ISO 22400-2:2014 clause 6: availability = APT / PBT, effectiveness = PRU x PQ / APT
    and quality ratio = GQ / PQ are fractions of a whole. Bottling shipped a 0.5 s routing
    PRU against a 0.43 s capper: effectiveness 116 %, reported without a word."""
    from twin.scenario.kpi_checks import flag_master_data_errors

    kpis = flag_master_data_errors(
        [
            KpiRecord(scope="work_unit", id="BTL1-CAPPER", source="mes", performance=1.163),
            KpiRecord(scope="line", id="BTL1", source="mes", availability=0.9, performance=0.95),
            KpiRecord(scope="work_unit", id="IDLE", source="mes"),  # undefined: not an error
        ]
    )
    capper, line, idle = kpis
    assert capper.master_data_errors == [
        "master-data error: effectiveness of work unit BTL1-CAPPER is 116.3%, above 100 %: "
        "the routing's planned run time per unit (PRU) is slower than the machine really "
        "runs (ISO 22400-2:2014 effectiveness = PRU x PQ / APT); set the segment's standard "
        "run time to the machine's ideal cycle"
    ]
    assert line.master_data_errors == [] and idle.master_data_errors == []
    report = sample_report().model_copy(update={"kpis": kpis})
    write_json(report, tmp_path / "report.json")
    data = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(data, load_schema())
    assert data["kpis"][0]["master_data_errors"] == capper.master_data_errors
    write_html(report, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "Master-data errors: these figures are impossible" in page
    assert "effectiveness of work unit BTL1-CAPPER is 116.3%" in page


def test_a_run_that_checked_nothing_never_reads_as_passed(tmp_path: Path) -> None:
    """No expectations, or none that could be checked: the verdict is not_checked (exit 3),
    whatever the builder claimed, and JUnit shows a failing case, not an empty green suite."""
    report = sample_report(passed=True)
    assert (report.verdict, report.passed, EXIT_CODES[report.verdict]) == ("passed", True, 0)
    empty = report.model_copy(update={"expectations": []})
    empty = Report.model_validate(empty.model_dump())
    assert (empty.verdict, empty.passed, EXIT_CODES[empty.verdict]) == ("not_checked", False, 3)
    assert empty.verdict_reason == "nothing was checked: the scenario has no expectations"
    write_junit(empty, tmp_path / "junit.xml")
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("1", "1")
    failure = suite.find("./testcase[@name='verdict']/failure")
    assert failure is not None and failure.get("type") == "not_checked"
    write_html(empty, tmp_path / "report.html")
    assert "NOT CHECKED" in (tmp_path / "report.html").read_text()

    def unchecked(name: str) -> ExpectationResult:
        return ExpectationResult(
            name=name, type="oee", passed=True, status="not_checked", detail="no KPIs"
        )

    data = sample_report(passed=True).model_dump()
    data["expectations"] = [unchecked("a").model_dump(), unchecked("b").model_dump()]
    none_checked = Report.model_validate(data)
    assert (none_checked.verdict, none_checked.passed) == ("not_checked", False)
    assert none_checked.verdict_reason.startswith("nothing was checked: none of the 2")
    data["expectations"][0] = report.expectations[0].model_dump()
    partly = Report.model_validate(data)
    assert (partly.verdict, partly.passed) == ("not_checked", False)
    assert "1 of 2 expectations could not be checked (b)" in partly.verdict_reason
    write_junit(partly, tmp_path / "partly.xml")
    case = ET.parse(tmp_path / "partly.xml").getroot().find("./testsuite/testcase[@name='b']")
    assert case is not None and case.find("failure").get("type") == "not_checked"  # type: ignore[union-attr]
    failed = sample_report(passed=False)
    assert (failed.verdict, EXIT_CODES[failed.verdict]) == ("failed", 1)
