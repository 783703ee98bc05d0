"""Concurrent requests: no lost update, no "database is locked", no forked audit chain."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from mes_core_factories import Plant

from mes_core.client import MesClient, MesRuleViolation
from mes_core.schemas.plant_events import CountEvent


def test_concurrent_consumption_never_overdraws_a_lot(pl: Plant) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    token = op.token

    def take_one(_: int) -> str:
        with MesClient(pl.url, token=token) as client:
            try:
                client.consume_lot(jo, 1, pl.c("B2"), 1)
            except MesRuleViolation as exc:
                return exc.rule
            return "ok"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(take_one, range(8)))
    # B2 holds 5: exactly five takes succeed, the rest are refused by rule 2.
    assert outcomes.count("ok") == 5
    assert set(outcomes) - {"ok"} <= {"LOT_QUANTITY", "LOT_NOT_AVAILABLE"}
    lot = pl.admin.get_lot(pl.c("B2"))
    assert (lot.quantity, lot.status) == (0, "consumed")
    consumed = pl.admin.get_job_order(jo).operations[0].consumed
    assert sum(float(str(c["quantity"])) for c in consumed) == 5
    assert pl.admin.verify_audit().ok


def test_same_batch_posted_concurrently_counts_once(pl: Plant) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    key = pl.admin.create_api_key(pl.c("conn")).api_key
    now = datetime.now(UTC)
    events = [
        CountEvent(source=pl.c("src"), sequence=i, work_unit=pl.c("FILL"), timestamp=now, good=1)
        for i in range(1, 201)
    ]

    def post(_: int) -> int:
        with MesClient(pl.url, api_key=key) as client:
            return client.ingest(events).accepted

    with ThreadPoolExecutor(max_workers=4) as pool:
        accepted = list(pool.map(post, range(4)))
    assert sum(accepted) == 200
    assert pl.admin.get_job_order(jo).operations[0].good == 200
    assert pl.admin.verify_audit().ok
