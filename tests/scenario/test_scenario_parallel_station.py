"""The shipped bottling line with two cappers in parallel (one station, one infeed buffer)
run through the scenario runner against a real mes_core (issue 17): the CAP operation of
each job order runs on both cappers, each started and completed by the operator at it,
each capper's counts and cap lots credited to that operation at that capper, and the MES's
records reconcile exactly with the plant (counts per capper and per job order, lots,
genealogy at the capper that drew the lot)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plant_models.loader import load_plant_model
from plant_models.scenario import SCENARIOS_DIR, load_scenario
from plant_models.schema import PlantModel
from twin.ledger import JobWorkUnitActuals, Ledger
from twin.scenario.people import People
from twin.scenario.runner import RunOptions, run_scenario
from twin.scenario.sut import Answer, OrderRequest

CAPPERS = ("BTL1-CAPPER1", "BTL1-CAPPER2")


@pytest.mark.slow
def test_parallel_cappers_reconcile_exactly_per_capper_and_per_order(tmp_path: Path) -> None:
    data = yaml.safe_load((SCENARIOS_DIR / "parallel_cappers_day.yaml").read_text())
    data["plant"] = str((SCENARIOS_DIR.parent / "bottling_parallel_cappers.yaml").resolve())
    data["duration"] = "2h"
    data["drain"] = "1h"
    data["link"] = "direct"  # the cheap link: the same wire contract as OPC UA's connector
    path = tmp_path / "parallel.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_scenario(
        RunOptions(scenario=path, report_dir=tmp_path / "report", order_scale=0.1, progress=False)
    )
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed)
    rows = result.report.reconciliation.rows
    assert all(r.matches for r in rows)
    by = {(r.entity, r.id, r.quantity): r for r in rows}
    for capper in CAPPERS:  # both cappers worked, each its own work unit in the MES
        good = by[("work_unit", capper, "good")]
        assert good.twin is not None and good.twin > 100 and good.mes == good.twin
    orders = sorted({r.id for r in rows if r.entity == "job_order"})
    assert len(orders) == 2
    for order in orders:
        # the cap lot each capper drew is booked at that capper, on the one CAP operation
        for capper in CAPPERS:
            edge = by[("genealogy", f"CAP-7781 -> LOT-{order}", f"consumed at {capper}")]
            assert edge.twin == edge.mes == 1.0
        # the one CAP operation is credited what both cappers made for the order
        for quantity in ("good", "scrap"):
            row = by[("operation", f"{order}/CAP", quantity)]
            assert row.twin is not None and row.mes == row.twin
        assert (by[("operation", f"{order}/CAP", "good")].twin or 0) > 0
        used = by[("job_order", order, "lot CAP-7781 consumed")]
        assert used.twin is not None and used.twin > 0 and used.mes == used.twin


def test_an_intermediate_lot_made_and_taken_in_by_parallel_stations() -> None:
    """A parallel station may make an intermediate lot (plant-model validation accepts it
    now that the MES takes an operation on several work units): its lot holds the good
    units of every work unit of the station, each unit's raw lots go into it, and a
    parallel station taking a lot in whole takes it at its units together."""
    raw = yaml.safe_load((SCENARIOS_DIR.parent / "bottling_parallel_cappers.yaml").read_text())
    raw["materials"].append({"id": "CAPPED-500"})
    for product in raw["products"]:
        for seg in product["segments"]:
            if seg["id"] == "CAP":
                seg["output_material"] = "CAPPED-500"
    PlantModel.model_validate(raw)  # references checked: no refusal

    ledger = Ledger("P", 1)
    stages = [
        ("F", "FILL", "FILLED"),
        ("C1", "CAP", "CAPPED"),
        ("C2", "CAP", "CAPPED"),
        ("L", "LABEL", None),
    ]
    ledger.job_dispatched(0.0, "J", "W", "L1", 10, "test", stages)
    ledger.lot_consumed(1.0, "J", "C1", "CAP-28", "CAPS-1", 6.0)
    ledger.lot_consumed(1.0, "J", "C2", "CAP-28", "CAPS-1", 4.0)
    for wu, made in (("F", 10), ("C1", 6), ("C2", 4), ("L", 10)):
        ledger.job_work_unit("J", wu, JobWorkUnitActuals(made, made, 0, 0.0, 1.0))
    ledger.job_ended(2.0, "J", 10, 10, 0)
    job = ledger.jobs["J"]
    assert job.operations() == [("F",), ("C1", "C2"), ("L",)]
    assert job.intermediate_intake() == [
        ("LOT-J-FILL", "LOT-J-CAP", "C1+C2", 10.0),  # taken in by both cappers
        ("LOT-J-CAP", "LOT-J", "L", 10.0),  # both cappers' good units
    ]
    edges = {(g["from_lot"], g["to_lot"]): g["quantity"] for g in ledger.genealogy()}
    assert edges[("CAPS-1", "LOT-J-CAP")] == 10.0


class Terminal:
    """An operator terminal that records the calls and accepts them all; ``per_unit``:
    it takes ``work_unit=`` on completions and lot scans."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def start_operation(
        self, order: str, segment: str, person: str, work_unit: str, at: float
    ) -> Answer:
        self.calls.append(("start", segment, work_unit))
        return Answer(True)

    def send_order(self, order: OrderRequest) -> Answer:
        return Answer(True)


class UnitTerminal(Terminal):
    def complete_operation(
        self,
        order: str,
        segment: str,
        person: str,
        at: float,
        output_lot: str | None,
        *,
        work_unit: str | None = None,
    ) -> Answer:
        self.calls.append(("complete", segment, work_unit, output_lot))
        return Answer(True)

    def consume_lot(
        self,
        order: str,
        segment: str,
        lot: str,
        quantity: float,
        person: str,
        at: float,
        *,
        work_unit: str | None = None,
    ) -> Answer:
        self.calls.append(("consume", segment, work_unit, lot, quantity))
        return Answer(True)


class OperationTerminal(Terminal):
    def complete_operation(
        self, order: str, segment: str, person: str, at: float, output_lot: str | None
    ) -> Answer:
        self.calls.append(("complete", segment, None, output_lot))
        return Answer(True)

    def consume_lot(
        self, order: str, segment: str, lot: str, quantity: float, person: str, at: float
    ) -> Answer:
        self.calls.append(("consume", segment, None, lot, quantity))
        return Answer(True)


def _cap_calls(terminal: Terminal) -> list[tuple[object, ...]]:
    scenario = load_scenario(SCENARIOS_DIR / "parallel_cappers_day.yaml")
    plant = load_plant_model("bottling_parallel_cappers")
    people = People(scenario, plant, terminal, [], lambda order: "")  # type: ignore[arg-type]
    people.order_req["J1"] = OrderRequest("J1", "WATER-500", 10, release_at=0.0)
    t = 3600.0
    for wu in people.line_units["BTL1"]:
        people.job_taken(wu, "J1")
        while people.start_waiting(t):  # one start per order and call: call again
            pass
    people.lot_drawn("J1", "BTL1-CAPPER1", "CAP-7781", 6.0)
    people.lot_drawn("J1", "BTL1-CAPPER2", "CAP-7781", 4.0)
    made = {wu: 10 for wu in people.line_units["BTL1"]} | {"BTL1-CAPPER1": 6, "BTL1-CAPPER2": 4}
    people.job_finished(t, "J1", "LOT-J1", made)
    while people.finished and t < 3 * 3600.0:
        people.act(t)
        t += 60.0
    assert not people.finished
    return [c for c in terminal.calls if c[1] == "CAP"]


def test_the_operator_at_each_capper_starts_books_and_completes_the_operation_there() -> None:
    assert _cap_calls(UnitTerminal()) == [
        ("start", "CAP", "BTL1-CAPPER1"),
        ("start", "CAP", "BTL1-CAPPER2"),
        ("consume", "CAP", "BTL1-CAPPER1", "CAP-7781", 6.0),
        ("consume", "CAP", "BTL1-CAPPER2", "CAP-7781", 4.0),
        ("complete", "CAP", "BTL1-CAPPER1", None),
        ("complete", "CAP", "BTL1-CAPPER2", None),  # the last unit; CAP makes no lot
    ]
    # An adapter whose terminal knows no work units on completions and lot scans is told
    # of the operation as of one (started on each unit, everything else as a whole).
    assert _cap_calls(OperationTerminal()) == [
        ("start", "CAP", "BTL1-CAPPER1"),
        ("start", "CAP", "BTL1-CAPPER2"),
        ("consume", "CAP", None, "CAP-7781", 6.0),
        ("consume", "CAP", None, "CAP-7781", 4.0),
        ("complete", "CAP", None, None),
    ]
