"""``junit.xml``: one test case per expectation, so any CI system shows the run's verdict.

Traceability travels as properties: each test case lists the requirement ids it verifies,
its risk class and its evidence; the suite has one ``requirement:<id>`` property per
requirement with its verdict and expectations."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from twin.scenario.report import Report


def junit_xml(report: Report) -> bytes:
    """The JUnit XML document of ``report`` (one ``testsuite``, one case per expectation)."""
    # A run that checked nothing is one failing case, so no CI reads it as green.
    nothing = not report.expectations
    failures = sum(1 for e in report.expectations if not e.passed) + nothing
    suite = ET.Element(
        "testsuite",
        name=f"mestwin.scenario.{report.scenario.name}",
        tests=str(len(report.expectations) + nothing),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{report.wall_time_s:.3f}",
        timestamp=report.started_at,
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("scenario", report.scenario.file),
        ("seed", str(report.seed)),
        ("sim_time_s", f"{report.sim_time_s:g}"),
        ("system_under_test", report.system_under_test),
        ("verdict", f"{report.verdict}: {report.verdict_reason}"),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    # The traceability matrix, one property per requirement: "<verdict>: <expectations>".
    for row in report.traceability:
        value = f"{row.verdict}: {'; '.join(row.expectations)}"
        ET.SubElement(props, "property", name=f"requirement:{row.requirement}", value=value)
    for exp in report.expectations:
        case = ET.SubElement(
            suite, "testcase", classname=f"scenario.{report.scenario.name}", name=exp.name
        )
        if exp.requirements or exp.risk or exp.evidence:
            case_props = ET.SubElement(case, "properties")
            for req in exp.requirements:
                ET.SubElement(case_props, "property", name="requirement", value=req)
            if exp.risk:
                ET.SubElement(case_props, "property", name="risk", value=exp.risk)
            for item in exp.evidence:
                ET.SubElement(case_props, "property", name="evidence", value=item)
        if exp.status == "not_checked":  # a failure, not a skip: it was not verified
            message = f"not checked: {exp.detail}"
            fail = ET.SubElement(case, "failure", message=message, type="not_checked")
            fail.text = message
        elif not exp.passed:
            fail = ET.SubElement(case, "failure", message=exp.detail, type=exp.type)
            fail.text = exp.detail
        else:
            out = ET.SubElement(case, "system-out")
            out.text = exp.detail
    if nothing:
        case = ET.SubElement(
            suite, "testcase", classname=f"scenario.{report.scenario.name}", name="verdict"
        )
        fail = ET.SubElement(case, "failure", message=report.verdict_reason, type="not_checked")
        fail.text = report.verdict_reason
    suites = ET.Element("testsuites", tests=suite.get("tests", "0"), failures=str(failures))
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def write_junit(report: Report, path: Path) -> None:
    path.write_bytes(junit_xml(report))
