"""report.pdf for the reviewer's signature (issue 19): printed by headless Chromium from a
small report made from data, rendered page by page with pdftoppm, its text read with
pdftotext, and sealed into the pack. About 5-15 s (one Chromium start)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support import require
from test_evidence_pack import report_folder
from typer.testing import CliRunner

from twin.scenario.evidence import verify
from twin.scenario.evidence_cli import app
from twin.scenario.report import Report, write_json
from twin.scenario.review_pdf import find_chromium
from twin.scenario.traceability import trace_matrix

pytestmark = pytest.mark.browser


def test_the_pdf_renders_and_carries_the_matrix_and_the_sign_off(tmp_path: Path) -> None:
    require(find_chromium() is not None, "Chromium")
    require(shutil.which("pdftoppm") is not None, "pdftoppm (poppler-utils)")
    folder = report_folder(tmp_path)
    report = Report.model_validate_json((folder / "report.json").read_bytes())
    report.expectations[1].requirements = ["URS-014"]
    report.expectations[1].risk = "high"
    report.expectations[1].evidence = ["#/reconciliation"]
    report.traceability = trace_matrix(report.expectations)
    report.notes = ["Labour not reconciled (not checked): no labour capability."]
    write_json(report, folder / "report.json")

    made = CliRunner().invoke(app, ["pdf", str(folder)])
    assert made.exit_code == 0, made.output
    pdf = folder / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    assert sorted(tmp_path.glob("page*.png")), "pdftoppm rendered no page"
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    text = " ".join(text.split())  # table cells wrap: words, not line breaks, are checked
    for expected in (
        "Validation report: scenario sample, PASSED",
        "URS-014",
        "Traceability",
        "#/reconciliation",
        "wrong_lot",
        "Labour not reconciled",
        "Sign-off",
        "Reviewed by",
        "meaning of signature",
    ):
        assert expected in text, f"{expected!r} not in the PDF's text"
    # The pack was sealed again with the PDF in it.
    check = verify(folder)
    assert check.ok, (check.changed, check.added, check.missing, check.problems)
