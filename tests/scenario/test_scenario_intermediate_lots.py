"""Intermediate lots (issue 13, genealogy): a routing step with an ``output_material``
makes a lot the next operation takes in. The twin's ledger books the edges through it, and
the simulated people name it when they complete that operation and consume it at the next
one. Plain data and a recording adapter: no MES, no scenario run (< 1 s)."""

from __future__ import annotations

from plant_models.loader import load_plant_model
from plant_models.scenario import SCENARIOS_DIR, load_scenario
from twin.ledger import JobWorkUnitActuals, Ledger
from twin.scenario.people import People
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
    people.start_waiting(7 * HOUR)
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
