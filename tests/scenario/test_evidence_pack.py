"""The sealed evidence pack (issue 19): a report folder's manifest of SHA-256 hashes,
signed with Ed25519, and ``mestwin evidence verify`` naming what changed since.

Built on a small report made from data (no scenario run); the end-to-end runs in
test_scenario_runs.py verify the pack a real run seals. About 1 s.
"""

from __future__ import annotations

import json
from pathlib import Path

from test_scenario_report import sample_report
from typer.testing import CliRunner

from twin.scenario.evidence import MANIFEST, PUBLIC_KEY, seal, sha256_file, verify
from twin.scenario.evidence_cli import app
from twin.scenario.html import write_html
from twin.scenario.junit import write_junit
from twin.scenario.report import write_json


def report_folder(tmp_path: Path) -> Path:
    """A report folder as a run leaves it, next to its scenario and plant files."""
    (tmp_path / "sample.yaml").write_text("name: sample\n")
    (tmp_path / "bottling").write_text("plant: bottling\n")
    folder = tmp_path / "report"
    folder.mkdir()
    report = sample_report(passed=True)
    write_json(report, folder / "report.json")
    write_html(report, folder / "report.html")
    write_junit(report, folder / "junit.xml")
    (folder / "logs").mkdir()
    (folder / "logs" / "connector.log").write_text("started\n")
    return folder


def test_a_fresh_pack_verifies_and_records_what_was_run(tmp_path: Path) -> None:
    folder = report_folder(tmp_path)
    done = seal(folder, base=tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert set(manifest["files"]) == {
        "report.json",
        "report.html",
        "junit.xml",
        "logs/connector.log",
    }
    assert manifest["files"]["junit.xml"] == sha256_file(folder / "junit.xml")
    assert manifest["scenario"]["file"]["sha256"] == sha256_file(tmp_path / "sample.yaml")
    assert manifest["scenario"]["plant"]["sha256"] == sha256_file(tmp_path / "bottling")
    assert manifest["seed"] == 1 and manifest["versions"]["mestwin"] == "0.1.0"
    assert manifest["machine"]["hostname"] and manifest["signature"]["key"] == "per-run"
    assert manifest["signature"]["public_key_fingerprint"] == done.fingerprint
    result = CliRunner().invoke(app, ["verify", str(folder)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and done.fingerprint in result.output


def test_one_changed_byte_an_added_and_a_missing_file_are_named(tmp_path: Path) -> None:
    folder = report_folder(tmp_path)
    seal(folder, base=tmp_path)
    html = folder / "report.html"
    data = bytearray(html.read_bytes())
    data[len(data) // 2] ^= 0x01
    html.write_bytes(bytes(data))
    (folder / "logs" / "connector.log").unlink()
    (folder / "extra.txt").write_text("slipped in\n")
    check = verify(folder)
    assert check.signature_valid and not check.ok
    assert (check.changed, check.added, check.missing) == (
        ["report.html"],
        ["extra.txt"],
        ["logs/connector.log"],
    )
    result = CliRunner().invoke(app, ["verify", str(folder)])
    assert result.exit_code == 1
    for line in ("CHANGED report.html", "ADDED   extra.txt", "MISSING logs/connector.log"):
        assert line in result.output


def test_an_edited_manifest_breaks_the_signature(tmp_path: Path) -> None:
    folder = report_folder(tmp_path)
    seal(folder, base=tmp_path)
    # Hide a change by editing the manifest's hash too: the signature gives it away.
    (folder / "junit.xml").write_text("<testsuites/>")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"]["junit.xml"] = sha256_file(folder / "junit.xml")
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    check = verify(folder)
    assert not check.signature_valid and not check.ok
    assert "signature does not match" in check.problems[0]


def test_a_given_key_signs_and_only_its_public_key_verifies(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("qa.pem", "other.pem"):
        made = runner.invoke(app, ["keygen", str(tmp_path / name)])
        assert made.exit_code == 0, made.output
    assert (tmp_path / "qa.pem").stat().st_mode & 0o077 == 0
    folder = report_folder(tmp_path)
    sealed = runner.invoke(app, ["seal", str(folder), "--signing-key", str(tmp_path / "qa.pem")])
    assert sealed.exit_code == 0, sealed.output
    assert (folder / PUBLIC_KEY).read_bytes() == (tmp_path / "qa.pub.pem").read_bytes()
    ok = runner.invoke(app, ["verify", str(folder), "--public-key", str(tmp_path / "qa.pub.pem")])
    assert ok.exit_code == 0, ok.output
    other = str(tmp_path / "other.pub.pem")
    wrong = runner.invoke(app, ["verify", str(folder), "--public-key", other])
    assert wrong.exit_code == 1 and "signature does not match" in wrong.output


def test_a_folder_that_was_never_sealed_is_refused_with_its_name(tmp_path: Path) -> None:
    folder = report_folder(tmp_path)
    result = CliRunner().invoke(app, ["verify", str(folder)])
    assert result.exit_code == 2
    assert "manifest.json" in result.output and "not a sealed evidence pack" in result.output
