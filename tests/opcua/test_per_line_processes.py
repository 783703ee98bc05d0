"""A plant served by one process per line (``twin serve --per-line``): what a line's process
holds. The 2-process plant reconciled through one MES is in test_connector_end_to_end.py
(it shares that module's MES)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plant_models.loader import load_plant_model
from twin.opcua.processes import SplitError, line_model

MINI = Path(__file__).with_name("mini_plant.yaml")


def test_a_line_model_keeps_only_what_the_line_needs() -> None:
    mini = load_plant_model(MINI)
    la = line_model(mini, "LA")
    assert [x.code for x in la.lines] == ["LA"]
    assert {p.line for p in la.products} == {"LA"}
    assert all(j.product in {p.id for p in la.products} for j in la.order_stream.job_orders)
    with pytest.raises(SplitError, match="no line"):
        line_model(mini, "NOPE")
