"""The raw OPC UA ceiling of ``bench opcua`` counts every value, on both of its pipes:
asyncua as shipped, and with the product's fast paths on both ends (the twin server's
lean notifications, the connector's lean publish decoding)."""

from __future__ import annotations

import asyncio

import pytest

from twin.opcua.bench_raw import run_raw_ceiling


@pytest.mark.parametrize("fast", [False, True], ids=["asyncua-as-shipped", "fast-paths"])
def test_the_raw_pipe_delivers_every_value_written(fast: bool) -> None:
    result = asyncio.run(
        run_raw_ceiling(nodes=40, rates=(400.0,), seconds=1.0, immutable=fast, lean=fast)
    )
    (step,) = [s for s in result.steps if s.clean] or result.steps
    assert step.written >= 200  # ~400/s for a second, on a busy machine at least half
    assert step.received == step.written
    assert result.ceiling_per_s > 0
