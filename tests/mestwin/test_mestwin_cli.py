"""The front door: every part's commands are reachable from one ``mestwin`` command."""

from __future__ import annotations

from typer.testing import CliRunner

from mestwin.cli import build_app


def test_mestwin_help_lists_the_command_groups() -> None:
    result = CliRunner().invoke(build_app(), ["--help"])
    assert result.exit_code == 0, result.output
    for group in ("db", "audit", "erp", "twin", "bench"):
        assert group in result.output
