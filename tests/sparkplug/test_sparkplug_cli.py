"""The Sparkplug options of the console commands: clear errors for bad input. < 1 s."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mestwin.cli import build_app

MINI = Path(__file__).parents[1] / "opcua" / "mini_plant.yaml"
MES = ["--mes", "http://127.0.0.1:1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sparkplug", "http://broker:1883"], "expected mqtt://HOST[:PORT]"),
        (["--sparkplug", "mqtt://127.0.0.1", "--group", "a/b"], "group id 'a/b'"),
        (["--sparkplug", "mqtt://127.0.0.1", "--host-id", "h#"], "host id 'h#'"),
        (["--sparkplug", "mqtt://127.0.0.1", "--opcua", "opc.tcp://x:1"], "one kind"),
        ([], "give --opcua URL"),
    ],
)
def test_connect_sparkplug_refuses_bad_input_naming_it(args: list[str], message: str) -> None:
    result = CliRunner().invoke(build_app(), ["connect", *MES, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_twin_serve_refuses_a_broker_that_is_not_mqtt() -> None:
    result = CliRunner().invoke(
        build_app(), ["twin", "serve", str(MINI), "--sparkplug", "http://x:1"]
    )
    assert result.exit_code == 2
    assert "expected mqtt://HOST" in result.output


def test_twin_serve_refuses_a_primary_host_id_the_namespace_does_not_allow() -> None:
    result = CliRunner().invoke(
        build_app(),
        ["twin", "serve", str(MINI), "--sparkplug", "mqtt://127.0.0.1", "--primary-host", "a+b"],
    )
    assert result.exit_code == 2
    assert "--primary-host 'a+b'" in result.output
