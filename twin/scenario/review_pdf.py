"""``report.pdf``: the run's report for a QA reviewer to sign, with a sign-off block.

Rendered by headless Chromium (``--print-to-pdf``) from a print page of its own (no
plots, no script: what a reviewer signs is text and tables): the verdict, what ran
(scenario, plant and their SHA-256, seed, versions, system under test), the traceability
matrix, every expectation with its requirement, risk, evidence and detail, the deviations
and the MES's answers, the notes, and a sign-off block with printed name, role, meaning of
the signature, signature and date for each signer (21 CFR 11.50 asks for name, date and
meaning). Chromium is the choice because the bench already needs it (browser tests, Debian
``chromium`` in CI): no PDF library is added, and the page prints as the browser shows it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html import escape
from pathlib import Path

from twin.scenario.evidence import sha256_file
from twin.scenario.report import Report
from twin.scenario.traceability import matrix_html

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
PRINT_TIMEOUT_S = 180
SIGNERS = (
    ("Executed by", "Test executor", "Executed the scenario as recorded"),
    ("Reviewed by", "Quality assurance", "Reviewed: the evidence supports each verdict"),
    ("Approved by", "Quality assurance / system owner", "Approved as validation evidence"),
)

_CSS = """
@page{size:A4;margin:15mm}
body{font-family:sans-serif;font-size:9.5pt;color:#000}
h1{font-size:15pt}h2{font-size:11.5pt;margin-top:1.2em}
table{border-collapse:collapse;width:100%;margin:0.5em 0;page-break-inside:auto}
tr{page-break-inside:avoid}
td,th{border:1px solid #666;padding:3px 5px;text-align:left;vertical-align:top}
th{background:#eee}code{font-size:8.5pt;word-break:break-all}
.pass{color:#1b5e20;font-weight:bold}.fail{color:#b71c1c;font-weight:bold}
.signoff td{height:2.2em}.signoff td:first-child{white-space:nowrap}
.signoff{page-break-inside:avoid}.signoff th:nth-child(2){width:18%}
.signoff th:nth-child(5){width:22%}.signoff th:nth-child(6){width:11%}
"""


class PdfError(Exception):
    """The PDF could not be made (names what is missing or what Chromium said)."""


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _rows(head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p>none</p>"
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _status(status: str, upper: bool = False) -> str:
    css = "pass" if status == "passed" else "fail"
    text = status.replace("_", " ")
    return f'<span class="{css}">{text.upper() if upper else text}</span>'


def _file_hash(path_text: str, base: Path) -> str:
    path = Path(path_text)
    path = path if path.is_absolute() else base / path
    return sha256_file(path) if path.is_file() else "not found when the PDF was made"


def review_html(report: Report, report_json_sha256: str, base: Path | None = None) -> str:
    """The print page of ``report`` (``report_json_sha256``: the SHA-256 of the
    ``report.json`` it renders, so the paper names the record it stands for)."""
    where = base or Path.cwd()
    verdict = (
        _status(report.verdict or "failed", upper=True) + f" ({escape(report.verdict_reason)})"
    )
    info = [
        ["scenario", escape(report.scenario.name)],
        [
            "scenario file",
            f"{escape(report.scenario.file)}<br><code>SHA-256 "
            f"{_file_hash(report.scenario.file, where)}</code>",
        ],
        [
            "plant model",
            f"{escape(report.scenario.plant)}<br><code>SHA-256 "
            f"{_file_hash(report.scenario.plant, where)}</code>",
        ],
        ["seed", str(report.seed)],
        ["versions", escape(", ".join(f"{k} {v}" for k, v in sorted(report.versions.items())))],
        ["system under test", escape(report.system_under_test)],
        ["started (UTC)", escape(report.started_at)],
        ["simulated", f"{report.sim_time_s / 3600:.2f} h"],
        ["report.json", f"<code>SHA-256 {report_json_sha256}</code>"],
    ]
    expectations = _rows(
        ["expectation", "requirement", "risk", "verdict", "evidence", "detail"],
        [
            [
                escape(e.name),
                escape(", ".join(e.requirements)),
                e.risk or "",
                _status(e.status or ("passed" if e.passed else "failed")),
                "<br>".join(f"<code>{escape(x)}</code>" for x in e.evidence),
                escape(e.detail),
            ]
            for e in report.expectations
        ],
    )
    deviations = _rows(
        ["deviation", "type", "at (s)", "MES answer", "rule", "in audit trail", "message"],
        [
            [
                escape(d.name),
                escape(d.type),
                f"{d.at:g}",
                d.outcome,
                escape(d.rule or ""),
                ("" if d.recorded is None else ("yes" if d.recorded else "no"))
                + (f"<br><code>entry {escape(d.audit_entry)}</code>" if d.audit_entry else ""),
                escape(d.message),
            ]
            for d in report.deviations
        ],
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    signoff = _rows(
        ["", "printed name", "role", "meaning of signature", "signature", "date"],
        [[what, "", escape(role), escape(meaning), "", ""] for what, role, meaning in SIGNERS],
    ).replace("<table>", '<table class="signoff">', 1)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>mestwin validation report: {escape(report.scenario.name)}</title><style>{_CSS}</style>
</head><body>
<h1>Validation report: scenario {escape(report.scenario.name)}, {verdict}</h1>
<p>{escape(report.scenario.description)}</p>
{_rows(["", ""], info)}
<p>The report folder is a sealed evidence pack: <code>mestwin evidence verify
&lt;folder&gt;</code> checks this PDF and every record against the signed manifest.</p>
<h2>Traceability: requirement, expectations, evidence, verdict</h2>{matrix_html(report)}
<h2>Expectations</h2>{expectations}
<h2>Deviations injected and the MES's answer</h2>{deviations}
<h2>Notes: what the run could not do, and why</h2>{f"<ul>{notes}</ul>" if notes else "<p>none</p>"}
<h2>Sign-off</h2>
<p>By signing, each signer states the meaning given in the row.</p>{signoff}
</body></html>
"""


def print_to_pdf(html_path: Path, pdf_path: Path, chromium: str | None = None) -> None:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium."""
    browser = chromium or find_chromium()
    if browser is None:
        raise PdfError(
            "no Chromium found (looked for " + ", ".join(CHROMIUM_CANDIDATES) + "): install "
            "the Debian package chromium to make report.pdf"
        )
    with tempfile.TemporaryDirectory(prefix="mestwin-pdf-") as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf_path.resolve()}",
            html_path.resolve().as_uri(),
        ]
        pdf_path.unlink(missing_ok=True)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PRINT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise PdfError(f"Chromium did not print within {PRINT_TIMEOUT_S} s") from None
    if done.returncode != 0 or not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PdfError(f"Chromium exited {done.returncode} without a PDF: {' | '.join(tail)}")


def write_review_pdf(folder: Path, chromium: str | None = None, base: Path | None = None) -> Path:
    """Make ``folder/report.pdf`` from ``folder/report.json``; returns its path. Seal the
    folder afterwards (the PDF is one of the pack's files)."""
    report_json = folder / "report.json"
    try:
        report = Report.model_validate_json(report_json.read_bytes())
    except OSError as exc:
        raise PdfError(f"{report_json}: {exc.strerror}") from None
    except ValueError as exc:
        raise PdfError(f"{report_json}: not a mestwin report: {exc}") from None
    page = review_html(report, sha256_file(report_json), base)
    pdf = folder / "report.pdf"
    with tempfile.TemporaryDirectory(prefix="mestwin-review-") as tmp:
        html_path = Path(tmp) / "review.html"
        html_path.write_text(page, encoding="utf-8")
        print_to_pdf(html_path, pdf, chromium)
    return pdf
