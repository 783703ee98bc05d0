"""Intermediate lots (issue 13, genealogy): a routing step with an ``output_material``
makes a lot the next operation takes in. The twin's ledger books the edges through it, and
the simulated people name it when they complete that operation and consume it at the next
one. The first two tests: plain data and a recording adapter, no MES (< 1 s); the last
runs one tablet batch against mes_core per order channel (about 6 s each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plant_models.loader import load_plant_model
from plant_models.scenario import SCENARIOS_DIR, load_scenario
from twin.ledger import JobWorkUnitActuals, Ledger
from twin.scenario.people import People
from twin.scenario.runner import RunOptions, run_scenario
from twin.scenario.sut import Answer, OrderRequest

HOUR = 3600.0
STAGES = [
    ("TAB1-DISP", "DISPENSE", None),
    ("TAB1-GRAN", "GRANULATE", "GRAN-PCM500"),
    ("TAB1-PRESS", "COMPRESS", None),
]


def test_ledger_edges_go_through_the_intermediate_lot() -> None:
    ledger = Ledger("PHARMA", 1)
    ledger.job_dispatched(0.0, "B1", "PCM500", "TAB1", 8, "test", STAGES)
    ledger.lot_consumed(1.0, "B1", "TAB1-DISP", "API-PCM", "PCM-A2301", 320.0)
    ledger.lot_consumed(2.0, "B1", "TAB1-GRAN", "WATER-PUR", "WATER-PUR-BULK", 96.0)
    for wu, made in (("TAB1-DISP", 8), ("TAB1-GRAN", 7), ("TAB1-PRESS", 7)):
        ledger.job_work_unit("B1", wu, JobWorkUnitActuals(made, made, 0, 0.0, 1.0))
    ledger.job_ended(3.0, "B1", 8, 7, 1)
    edges = {(g["from_lot"], g["to_lot"]): g["quantity"] for g in ledger.genealogy()}
    assert edges == {
        ("PCM-A2301", "LOT-B1-GRANULATE"): 320.0,  # dispensed into the granulate
        ("WATER-PUR-BULK", "LOT-B1-GRANULATE"): 96.0,
        ("LOT-B1-GRANULATE", "LOT-B1"): 7.0,  # the granulator's good units, compressed
    }
    job = ledger.jobs["B1"]
    assert job.intermediate_intake() == [("LOT-B1-GRANULATE", "LOT-B1", "TAB1-PRESS", 7.0)]


class Terminal:
    """Just enough of an operator terminal: records the calls, accepts them all."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def start_operation(
        self, order: str, segment: str, person: str, work_unit: str, at: float
    ) -> Answer:
        self.calls.append(("start", segment))
        return Answer(True)

    def complete_operation(
        self, order: str, segment: str, person: str, at: float, output_lot: str | None
    ) -> Answer:
        self.calls.append(("complete", segment, output_lot))
        return Answer(True)

    def consume_lot(
        self, order: str, segment: str, lot: str, quantity: float, person: str, at: float
    ) -> Answer:
        self.calls.append(("consume", segment, lot, quantity))
        return Answer(True)

    def send_order(self, order: OrderRequest) -> Answer:
        return Answer(True)


def test_people_name_the_granulate_and_consume_it_at_compression_before_completing() -> None:
    scenario = load_scenario(SCENARIOS_DIR / "tablet_batch_deviations.yaml")
    plant = load_plant_model("tablet_line")
    terminal = Terminal()
    people = People(scenario, plant, terminal, [], lambda order: "")  # type: ignore[arg-type]
    people.order_req["B1"] = OrderRequest("B1", "PCM500", 8, release_at=0.0)
    for wu in people.line_units["TAB1"]:
        people.job_taken(wu, "B1")
    while people.start_waiting(7 * HOUR):  # as the runner does: deliver, start, again
        pass
    made = {wu: 8 for wu in people.line_units["TAB1"]} | {"TAB1-GRAN": 7}
    people.job_finished(8 * HOUR, "B1", "LOT-B1", made)
    t = 8 * HOUR
    while people.finished and t < 10 * HOUR:
        people.act(t)
        t += 60.0
    done = [c for c in terminal.calls if c[0] in ("complete", "consume")]
    assert done == [
        ("complete", "DISPENSE", None),
        ("complete", "GRANULATE", "LOT-B1-GRANULATE"),
        ("consume", "COMPRESS", "LOT-B1-GRANULATE", 7.0),  # while compression still runs
        ("complete", "COMPRESS", None),
        ("complete", "COAT", None),
        ("complete", "PACKAGE", "LOT-B1"),
    ]
    assert not people.finished and not people.unbooked.get(("B1", "TAB1-PRESS", "LOT-B1-GRANULATE"))


def test_one_operation_of_an_order_starts_per_call_so_its_predecessors_counts_go_first() -> None:
    """Two operations of one order taken while the MES was away: the second starts only
    after the runner delivered the counts the first start released (its SEQUENCE rule
    reads the predecessor's good units)."""
    scenario = load_scenario(SCENARIOS_DIR / "tablet_batch_deviations.yaml")
    plant = load_plant_model("tablet_line")
    terminal = Terminal()
    people = People(scenario, plant, terminal, [], lambda order: "")  # type: ignore[arg-type]
    people.order_req["B1"] = OrderRequest("B1", "PCM500", 8, release_at=0.0)
    units = people.line_units["TAB1"]
    for wu in units[:3]:
        people.job_taken(wu, "B1")
    starts: list[list[str]] = []
    while people.start_waiting(7 * HOUR):
        starts.append([c[1] for c in terminal.calls if c[0] == "start"])
    first, second, third = ["DISPENSE"], ["GRANULATE"], ["COMPRESS"]
    assert starts == [first, first + second, first + second + third]


ONE_BATCH = """\
name: one-tablet-batch
plant: {plant}
duration: 16h
seed: 1
link: direct
system_under_test: {{adapter: mes_core{orders}}}
erp:
  plant_orders: false
  orders:
    - {{id: JO-T1, product: PCM500, quantity: 4}}
people:
  - {{id: P-ALVAREZ, role: operator}}
  - {{id: P-BAKER, role: operator}}
  - {{id: P-CHEN, role: operator}}
  - {{id: P-DIALLO, role: operator}}
  - {{id: P-EKLUND, role: operator}}
expectations:
  - {{type: all_orders_completed}}
  - {{type: reconciliation_exact}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("orders", ["", ", orders: b2mml"], ids=["rest", "b2mml"])
def test_a_tablet_batch_reconciles_its_granulate_lot_with_the_mes(
    tmp_path: Path, orders: str
) -> None:
    plant = Path(__file__).parents[2] / "plant_models" / "tablet_line.yaml"
    path = tmp_path / "one_batch.yaml"
    path.write_text(ONE_BATCH.format(plant=plant, orders=orders))
    result = run_scenario(RunOptions(scenario=path, report_dir=tmp_path / "report", progress=False))
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed)
    rows = {(r.entity, r.id, r.quantity): r for r in result.report.reconciliation.rows}
    granulate = "LOT-JO-T1-GRANULATE"
    for key in (
        ("genealogy", f"{granulate} -> LOT-JO-T1", "consumed at TAB1-PRESS"),
        ("genealogy", f"PCM-A2301 -> {granulate}", "consumed at TAB1-DISP"),
        ("genealogy", f"WATER-PUR-BULK -> {granulate}", "consumed at TAB1-GRAN"),
        ("job_order", "JO-T1", f"lot {granulate} produced"),
    ):
        assert key in rows, key
        assert rows[key].twin is not None and rows[key].twin == rows[key].mes, rows[key]
    # No raw material goes straight into the finished lot past the granulate.
    assert ("genealogy", "PCM-A2301 -> LOT-JO-T1", "edge") not in rows


class DeclaringTerminal(Terminal):
    """Records the keywords of a completion too (the lot quantity an operator declares)."""

    def complete_operation(  # type: ignore[override]
        self,
        order: str,
        segment: str,
        person: str,
        at: float,
        output_lot: str | None,
        **keywords: object,
    ) -> Answer:
        self.calls.append(("complete", segment, output_lot, keywords))
        return Answer(True)


def test_the_operator_declares_the_lot_quantity_when_scrap_follows_the_last_operation() -> None:
    """Units scrapped after the last operation (at a work unit in no operation) never
    reach the output lot: the operator declares the lot's quantity (the pallet counted at
    pack-out), not the operation's good units; without such scrap, nothing is declared."""
    scenario = load_scenario(SCENARIOS_DIR / "tablet_batch_deviations.yaml")
    plant = load_plant_model("tablet_line")
    for lot_made, declared in ((6, {"lot_quantity": 6}), (8, {})):
        terminal = DeclaringTerminal()
        people = People(scenario, plant, terminal, [], lambda order: "")  # type: ignore[arg-type]
        people.order_req["B1"] = OrderRequest("B1", "PCM500", 8, release_at=0.0)
        for wu in people.line_units["TAB1"]:
            people.job_taken(wu, "B1")
        while people.start_waiting(7 * HOUR):
            pass
        made = {wu: 8 for wu in people.line_units["TAB1"]}
        people.job_finished(8 * HOUR, "B1", "LOT-B1", made, lot_made)
        t = 8 * HOUR
        while people.finished and t < 10 * HOUR:
            people.act(t)
            t += 60.0
        last = [c for c in terminal.calls if c[0] == "complete" and c[2] == "LOT-B1"]
        assert [c[3] for c in last] == [declared]
    # An adapter whose completion takes no lot_quantity= is called without it (the
    # reconciliation then shows the lot's difference), never with a keyword it lacks.
    plain = Terminal()
    people = People(scenario, plant, plain, [], lambda order: "")  # type: ignore[arg-type]
    people.order_req["B1"] = OrderRequest("B1", "PCM500", 8, release_at=0.0)
    for wu in people.line_units["TAB1"]:
        people.job_taken(wu, "B1")
    while people.start_waiting(7 * HOUR):
        pass
    people.job_finished(8 * HOUR, "B1", "LOT-B1", dict.fromkeys(people.line_units["TAB1"], 8), 6)
    t = 8 * HOUR
    while people.finished and t < 10 * HOUR:
        people.act(t)
        t += 60.0
    assert ("complete", "PACKAGE", "LOT-B1") in plain.calls
