"""The traceability matrix: requirement -> expectations -> evidence -> verdict.

A scenario's expectations name the requirement ids they verify (``requirement:``) and a
GAMP 5 risk class (``risk:``); a reviewer reads the run per requirement. Plain data: built
from the checked expectations, rendered in ``report.json``, ``report.html`` and
``junit.xml``.
"""

from __future__ import annotations

from typing import Literal

from twin.scenario.report import ExpectationResult, Report, TraceRow

RISK_ORDER = {"low": 0, "medium": 1, "high": 2}
_CLASS = {"passed": "pass", "failed": "fail", "not_checked": "fail"}


def trace_matrix(results: list[ExpectationResult]) -> list[TraceRow]:
    """One row per requirement id, in the order the ids first appear; passed only when
    every expectation verifying it passed."""
    grouped: dict[str, list[ExpectationResult]] = {}
    for result in results:
        for req in result.requirements:
            grouped.setdefault(req, []).append(result)
    rows = []
    for req, exps in grouped.items():
        risks = [e.risk for e in exps if e.risk is not None]
        evidence: list[str] = []
        for e in exps:
            evidence.extend(x for x in e.evidence if x not in evidence)
        rows.append(
            TraceRow(
                requirement=req,
                risk=max(risks, key=RISK_ORDER.__getitem__) if risks else None,
                expectations=[e.name for e in exps],
                evidence=evidence,
                verdict=_verdict(exps),
            )
        )
    return rows


def _verdict(exps: list[ExpectationResult]) -> Literal["passed", "failed", "not_checked"]:
    statuses = {e.status or ("passed" if e.passed else "failed") for e in exps}
    if "failed" in statuses:
        return "failed"
    if "not_checked" in statuses:  # never counted as passed
        return "not_checked"
    return "passed"


def untraced(results: list[ExpectationResult]) -> list[str]:
    """Names of the expectations that verify no requirement."""
    return [r.name for r in results if not r.requirements]


def matrix_html(report: Report) -> str:
    """The matrix as an HTML table (with the untraced expectations named below it)."""
    from html import escape

    if not report.traceability:
        return "<p>No expectation names a requirement (<code>requirement:</code>).</p>"
    head = "".join(
        f"<th>{h}</th>" for h in ("requirement", "risk", "expectations", "evidence", "verdict")
    )
    rows = []
    for row in report.traceability:
        verdict = f'<span class="{_CLASS[row.verdict]}">{row.verdict.replace("_", " ")}</span>'
        rows.append(
            "<tr>"
            f"<td>{escape(row.requirement)}</td><td>{row.risk or ''}</td>"
            f"<td>{'<br>'.join(escape(e) for e in row.expectations)}</td>"
            f"<td>{'<br>'.join(f'<code>{escape(x)}</code>' for x in row.evidence)}</td>"
            f"<td>{verdict}</td></tr>"
        )
    out = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    loose = untraced(report.expectations)
    if loose:
        out += "<p>Verifying no requirement: " + ", ".join(escape(n) for n in loose) + ".</p>"
    return out
