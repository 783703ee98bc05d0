"""The console commands of the OPC UA part: clear errors for bad input, and the NodeSet2
export from the command line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mestwin.cli import build_app

MINI = Path(__file__).with_name("mini_plant.yaml")


def test_twin_nodeset_writes_the_model_as_nodeset2(tmp_path: Path) -> None:
    out = tmp_path / "plant.xml"
    result = CliRunner().invoke(build_app(), ["twin", "nodeset", str(MINI), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "nodes of MINI" in result.output
    assert "<UANodeSet" in out.read_text(encoding="utf-8")


def test_twin_serve_names_a_missing_plant_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_app(), ["twin", "serve", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output


def test_twin_serve_refuses_sign_encrypt_without_a_user() -> None:
    result = CliRunner().invoke(
        build_app(), ["twin", "serve", str(MINI), "--security", "sign-encrypt"]
    )
    assert result.exit_code == 2
    assert "--user NAME:PASSWORD" in result.output


def test_connect_refuses_an_endpoint_that_is_not_opc_tcp() -> None:
    result = CliRunner().invoke(
        build_app(), ["connect", "--opcua", "http://plc:4840", "--mes", "http://127.0.0.1:1"]
    )
    assert result.exit_code == 2
    assert "expected opc.tcp://HOST:PORT" in result.output


def test_connect_names_the_bad_field_of_a_tag_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "plc.yaml"
    mapping.write_text("work_units:\n  - code: X\n    tagz: {}\n", encoding="utf-8")
    result = CliRunner().invoke(
        build_app(),
        ["connect", "--opcua", "opc.tcp://127.0.0.1:1", "--mes", "http://127.0.0.1:1",
         "--mapping", str(mapping)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "work_units.0.tagz" in result.output
