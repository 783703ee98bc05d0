"""``mestwin bench sparkplug``'s pieces on a small scale (the figures are never asserted:
the bench reports them): the bare MQTT pipe counts what its subscriber received, and
the command refuses bad input naming it. ~3 s."""

from __future__ import annotations

from mqtt_support import BROKER_URL, require_broker
from typer.testing import CliRunner

from mestwin.cli import build_app
from twin.sparkplug.bench import run_ceiling


def test_bare_pipe_step_counts_what_the_subscriber_received() -> None:
    require_broker()
    (step,) = run_ceiling(BROKER_URL, 10, (2000.0,), seconds=0.5)
    assert step.published == 100  # 2,000 metric changes/s of 10 per message, 0.5 s
    assert 0 <= step.received <= step.published
    assert step.lost == step.published - step.received


def test_bench_sparkplug_refuses_bad_input() -> None:
    runner = CliRunner()
    result = runner.invoke(build_app(), ["bench", "sparkplug", "--broker", "http://x:1"])
    assert result.exit_code == 2 and "expected mqtt://HOST" in result.output
    result = runner.invoke(build_app(), ["bench", "sparkplug", "--rates", "10,x"])
    assert result.exit_code == 2 and "could not convert" in result.output
