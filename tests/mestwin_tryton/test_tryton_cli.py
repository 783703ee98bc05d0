"""``mestwin tryton serve``: a broken plant model is refused with one line, before any
trytond is started (instant; the loaded case is the master-data test's)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mestwin.cli import build_app


def test_serve_refuses_a_plant_model_that_does_not_load(tmp_path: Path) -> None:
    broken = tmp_path / "plant.yaml"
    broken.write_text("plant: {code: X}\nlines: []\n", encoding="utf-8")
    result = CliRunner().invoke(
        build_app(), ["tryton", "serve", str(broken), "--folder", str(tmp_path / "run"), "--exit"]
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "plant.yaml" in result.output
    assert not (tmp_path / "run").exists()
