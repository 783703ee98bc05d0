"""Operator transactions under concurrency (issue 2): an operator's quantity report and the
connector's count events add to the same operation at once and lose nothing; the answer of
a change, built from the rows it locked, is the job order as read afterwards."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from mes_core_factories import Plant

from mes_core.client import MesClient, MesRuleViolation
from mes_core.schemas.plant_events import CountEvent

REPORTS = 24
BATCHES = 8
PER_BATCH = 25


def test_operator_reports_and_ingested_counts_at_once_lose_no_unit(pl: Plant) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    key = pl.admin.create_api_key(pl.c("conn")).api_key
    token = op.token
    now = datetime.now(UTC)

    def report(_: int) -> None:
        with MesClient(pl.url, token=token) as client:
            client.report_quantities(jo, 1, good=1, scrap=1)

    def ingest(b: int) -> None:
        events = [
            CountEvent(
                source=pl.c("src"),
                sequence=1 + b * PER_BATCH + i,
                work_unit=pl.c("FILL"),
                timestamp=now,
                good=2,
            )
            for i in range(PER_BATCH)
        ]
        with MesClient(pl.url, api_key=key) as client:
            client.ingest(events)

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = [pool.submit(report, i) for i in range(REPORTS)]
        done += [pool.submit(ingest, b) for b in range(BATCHES)]
        for f in done:
            f.result()
    operation = pl.admin.get_job_order(jo).operations[0]
    assert (operation.good, operation.scrap) == (REPORTS + 2 * BATCHES * PER_BATCH, REPORTS)
    assert pl.admin.verify_audit().ok


def test_operator_change_answers_the_job_order_as_read_afterwards(pl: Plant) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    started = op.start_operation(jo, 1)
    consumed = op.consume_lot(jo, 1, pl.c("B2"), 2)
    reported = op.report_quantities(jo, 1, good=5, scrap=1)
    completed = op.complete_operation(jo, 1)
    first = started.operations[0]
    assert (first.state, first.good, first.scrap) == ("running", 0, 0)
    assert [(o.state, o.good, o.scrap) for o in (consumed, reported)] == [
        ("running", 0, 0),
        ("running", 5, 1),
    ]
    assert consumed.consumption is not None
    assert consumed.consumption.lot_remaining == pl.admin.get_lot(pl.c("B2")).quantity
    last = completed.operations[0]
    assert (last.state, last.good, last.scrap) == ("completed", 5, 1)
    assert completed == pl.admin.get_job_order(jo)


def test_two_job_orders_drawing_on_one_lot_never_overdraw_it(pl: Plant) -> None:
    op = pl.person("op")
    jobs = [pl.job_order("JA"), pl.job_order("JB")]
    for jo in jobs:
        op.start_operation(jo, 1)
        # Each job order's tree now names the lot (read before the lot's lock is taken).
        op.consume_lot(jo, 1, pl.c("B2"), 1)
    token = op.token

    def take_one(i: int) -> str:
        with MesClient(pl.url, token=token) as client:
            try:
                client.consume_lot(jobs[i % 2], 1, pl.c("B2"), 1)
            except MesRuleViolation as exc:
                return exc.rule
            return "ok"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(take_one, range(10)))
    # B2 held 5, 2 were taken above: exactly three more takes succeed.
    assert outcomes.count("ok") == 3
    lot = pl.admin.get_lot(pl.c("B2"))
    assert (lot.quantity, lot.status) == (0, "consumed")
    assert pl.admin.verify_audit().ok
