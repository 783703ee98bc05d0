"""Segment dependencies (ISA-95 Part 2): a routing segment may name the segments it follows
(``depends_on``), so the feeder operations of an assembly run side by side and the
assembly follows them all (issue 17); without it rule 1 keeps the routing's order. The
pure rule, and through the API."""

from __future__ import annotations

import uuid

import pytest
from mes_core_factories import plant
from test_mes_api_execution import refuse

from mes_core.client import MesClient, MesClientError
from mes_core.domain import rules
from mes_core.schemas.masterdata import MasterData


def test_an_operation_follows_the_segments_it_depends_on_else_every_earlier_one() -> None:
    assert [e for e in (1, 2, 3) if rules.is_predecessor(e, 4, None)] == [1, 2, 3]
    assert [e for e in (1, 2, 3) if rules.is_predecessor(e, 4, [1, 3])] == [1, 3]
    assert not any(rules.is_predecessor(e, 2, []) for e in (1,))  # a second feeder


def test_a_feeder_operation_starts_and_completes_beside_the_first_one(
    mes_url: str, admin: MesClient
) -> None:
    """Cap depends on nothing (a second feeder branch): it starts while fill is pending,
    and completes before it; with the default dependencies it may not."""
    side = plant(mes_url, admin, cap_depends_on=[])
    op = side.person("op")
    jo = side.job_order()
    started = op.start_operation(jo, 2)
    assert [o.state for o in started.operations] == ["pending", "running"]
    op.complete_operation(jo, 2)
    assert admin.get_routing(side.c("R")).segments[1].depends_on == []
    serial = plant(mes_url, admin)
    op = serial.person("op")
    jo = serial.job_order()
    refuse(serial, "SEQUENCE", jo, lambda: op.start_operation(jo, 2))
    assert admin.get_routing(serial.c("R")).segments[1].depends_on is None


def test_a_segment_cannot_depend_on_a_later_or_missing_one(mes_url: str, admin: MesClient) -> None:
    product = f"DEP-{uuid.uuid4().hex[:8]}"
    bad = MasterData.model_validate(
        {
            "materials": [{"code": product}],
            "routings": [
                {
                    "code": f"R-{product}",
                    "product": product,
                    "segments": [
                        {"sequence": 1, "name": "a", "equipment_class": "X", "depends_on": [2]},
                        {"sequence": 2, "name": "b", "equipment_class": "X"},
                    ],
                }
            ],
        }
    )
    with pytest.raises(MesClientError) as exc:
        admin.load_master_data(bad)
    assert "segment 1 depends on 2, which is not an earlier segment" in str(exc.value)
