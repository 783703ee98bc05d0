"""Tryton as the system under test, end to end: the twin serves OPC UA, the adapter's
gateway subscribes over real TCP and books counts into Tryton, operators act through
JSON-RPC, and what Tryton recorded reconciles exactly with the plant (~20-40 s here)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from plant_models.loader import load_plant_model
from twin.opcua.server import OpcUaPublisher
from twin.scenario.opcua_link import PlantServing
from twin.scenario.plant import EnginePlant
from twin.scenario.sut import OrderRequest
from twin.scenario.truth import TruthRecorder

SEGMENTS = {
    "FILL": "BTL1-FILLER",
    "CAP": "BTL1-CAPPER",
    "LABEL": "BTL1-LABELER",
    "PACK": "BTL1-CASEPACKER",
}


class Sampled:
    """The publisher, with process values only as an inspection plan samples them (every
    five minutes per value), as the runner's links publish them."""

    def __init__(self, publisher: OpcUaPublisher, every: float = 300.0) -> None:
        self.publisher = publisher
        self.every = every
        self.last: dict[tuple[str, str], float] = {}

    def on_value(
        self, t: float, work_unit: str, name: str, value: float, wall: float | None
    ) -> None:
        key = (work_unit, name)
        if t - self.last.get(key, -self.every) >= self.every:
            self.last[key] = t
            self.publisher.on_value(t, work_unit, name, value, wall)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.publisher, name)


class Bench:
    """A twin plant served over OPC UA and a TrytonSut subscribed to it."""

    def __init__(self, server: Any) -> None:
        from mestwin_tryton.adapter import TrytonSut

        self.plant = load_plant_model("bottling_line")
        self.sim = EnginePlant(self.plant, seed=3)
        self.truth = TruthRecorder()
        self.serving = PlantServing(self.plant)
        self.serving.built.result(60)
        assert self.serving.server is not None
        self.publisher = OpcUaPublisher([self.serving.server], self.plant.plant.start)
        self._pump = asyncio.run_coroutine_threadsafe(self._start_pump(), self.serving.loop)
        self._pump.result(10)
        self.sim.add_observer(self.truth)
        self.sim.add_observer(Sampled(self.publisher))  # type: ignore[arg-type]
        self.sut = TrytonSut(server.url, server.database, plant_start=self.plant.plant.start)
        self.sut.load_master_data(self.plant)
        self.sut.subscribe(self.serving.endpoint)

    async def _start_pump(self) -> None:
        self.task = asyncio.ensure_future(self.publisher.run())

    def caught_up(self) -> bool:
        expected = {
            wu: (rec.good + rec.scrap, rec.scrap)
            for wu, rec in self.truth.records().work_units.items()
        }
        return self.sut.wait_caught_up(expected, timeout=120)

    def close(self) -> None:
        self.sut.close()
        self.serving.loop.call_soon_threadsafe(self.task.cancel)
        self.serving.close()


@pytest.fixture(scope="module")
def bench(tryton_server: Any) -> Iterator[Bench]:
    b = Bench(tryton_server)
    try:
        yield b
    finally:
        b.close()


def test_an_order_runs_through_tryton_and_reconciles_exactly(bench: Bench) -> None:
    sut, sim = bench.sut, bench.sim
    order = "JO-T1"
    assert sut.send_order(
        OrderRequest(order, "WATER-500", 400, release_at=0.0, due=3600.0)
    ).accepted
    assert sut.dispatch_order(order, SEGMENTS).accepted
    for seg, wu in SEGMENTS.items():
        answer = sut.start_operation(order, seg, "OP-ANNA", wu, 60.0)
        assert answer.accepted, answer
    assert sim.dispatch("BTL1", order, "WATER-500", 400) == ""
    sim.run_until(2 * 3600.0)
    assert bench.caught_up(), (sut.booked_counters(), sut.collector and sut.collector.errors)
    drawn: dict[str, float] = {}
    for (job, _wu, _material, lot), qty in sim.ledger.consumed.items():
        if job == order:
            drawn[lot] = drawn.get(lot, 0.0) + qty
    for lot, qty in drawn.items():
        assert sut.consume_lot(order, "FILL", lot, qty, "OP-ANNA", 3000.0).accepted
    for seg in SEGMENTS:
        last = seg == "PACK"
        answer = sut.complete_operation(order, seg, "OP-ANNA", 3600.0, "FG-T1" if last else None)
        assert answer.accepted, answer
    units = bench.truth.records().work_units
    twin_good = bench.truth.records({order: "BTL1-CASEPACKER"}).job_orders[order].good
    twin_scrap = sum(u.scrap for u in units.values())  # scrapped anywhere on the line
    mine = sut.records(bench.plant, 7200.0).job_orders[order]
    assert (mine.good, mine.scrap) == (twin_good, twin_scrap)
    assert mine.lots_produced == {"FG-T1": float(twin_good)}
    assert mine.lots_consumed == pytest.approx(drawn)
    view = next(v for v in sut.orders() if v.id == order)
    assert view.state == "completed"
    assert {op.state for op in view.operations} == {"completed"}
    lines = sut.rpc.search_read(
        "timesheet.line", [("description", "like", f"{order}/%")], ["duration"]
    )
    assert len(lines) == 4
    assert all(line["duration"].total_seconds() == pytest.approx(3540.0) for line in lines)
    # Read back: each operation ran 3540 s (its work cycles), and the timesheet booked
    # those hours to the operator who started it, on the order.
    back = sut.records(bench.plant, 7200.0)
    assert back.operation_seconds is not None and back.labour is not None
    assert {k: v for k, v in back.operation_seconds.items() if k[0] == order} == {
        (order, seg): 3540.0 for seg in SEGMENTS
    }
    assert back.labour_from_operations
    assert back.labour.by_order[order] == pytest.approx(4 * 3540.0 / 3600.0)
    assert back.labour.by_person["OP-ANNA"] >= 4 * 3540.0 / 3600.0 - 1e-9


def test_what_tryton_enforces_and_what_it_accepts(bench: Bench) -> None:
    sut = bench.sut
    order = "JO-T2"
    assert sut.send_order(OrderRequest(order, "JUICE-500", 100, release_at=0.0)).accepted
    assert sut.dispatch_order(order, SEGMENTS).accepted
    # Equipment class: a work center of another category is refused by the work's domain.
    wrong = sut.start_operation(order, "FILL", "OP-ANNA", "BTL1-CAPPER", 10.0)
    assert wrong.refused and wrong.rule == "TRYTON_DOMAIN", wrong
    # Sequence: Tryton lets the last operation start before the first one.
    assert sut.start_operation(order, "PACK", "OP-ANNA", "BTL1-CASEPACKER", 20.0).accepted
    # Wrong material: water labels consumed on a juice production are accepted.
    assert sut.consume_lot(order, "LABEL", "LJ-6621", 5.0, "OP-ANNA", 30.0).accepted
    # Expired concentrate: Tryton has no expiry to check; it accepts, and the answer says why.
    expired = sut.consume_lot(order, "FILL", "JB-3290", 5.0, "OP-ANNA", 40.0)
    assert expired.accepted and "expired on 2025-12-31" in expired.message
    # An operator whose filling certification expired: Tryton has no certifications.
    uncertified = sut.start_operation(order, "FILL", "OP-DAN", "BTL1-FILLER", 50.0)
    assert uncertified.accepted and "no valid certification for filling" in uncertified.message
    # Calibration, lot status, KPIs, a state history cannot be expressed: no method.
    for missing in ("set_calibration_due", "lot_state", "kpis", "state_history"):
        assert not hasattr(sut, missing)
    assert set(sut.not_checkable()) >= {"expired_lot", "uncertified_operator", "out_of_calibration"}
