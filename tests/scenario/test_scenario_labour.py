"""Labour in the loop (issue 13): the bench's operators clock in and out with their shifts
and book labour on the operations they run; the reconciliation compares hours per person
and per job order with what they did. Plain data and a recording adapter: no MES, < 1 s."""

from __future__ import annotations

from plant_models.loader import load_plant_model
from plant_models.scenario import SCENARIOS_DIR, load_scenario
from twin.scenario.people import People
from twin.scenario.reconcile import LabourHours, Records, reconcile
from twin.scenario.sut import Answer, LabourCapability, OrderRequest

HOUR = 3600.0


class LabourRecorder:
    """Just enough of an adapter for the people's labour: it records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def clock_in(self, person: str, at: float) -> Answer:
        self.calls.append(("in", person, f"{at / HOUR:g}"))
        return Answer(True)

    def clock_out(self, person: str, at: float) -> Answer:
        self.calls.append(("out", person, f"{at / HOUR:g}"))
        return Answer(True)

    def start_labour(self, order: str, segment: str, person: str, at: float) -> Answer:
        self.calls.append(("start", person, f"{order}/{segment}", f"{at / HOUR:g}"))
        return Answer(True)

    def stop_labour(self, order: str, segment: str, person: str, at: float) -> Answer:
        self.calls.append(("stop", person, f"{order}/{segment}", f"{at / HOUR:g}"))
        return Answer(True)

    def labour_records(self, persons: list[str], orders: list[str]) -> LabourHours:
        return LabourHours()

    def held(self) -> list[str]:
        return []


def _people() -> tuple[People, LabourRecorder]:
    scenario = load_scenario(SCENARIOS_DIR / "clean_bottling_day.yaml")
    plant = load_plant_model(SCENARIOS_DIR.parent / "bottling_line.yaml")
    sut = LabourRecorder()
    assert isinstance(sut, LabourCapability)
    return People(scenario, plant, sut, [], lambda order: ""), sut  # type: ignore[arg-type]


def test_operators_clock_in_and_out_with_their_shifts_breaks_off_the_clock() -> None:
    people, sut = _people()
    t = 0.0
    while t < 16 * HOUR:
        people.act(t)
        t += 300.0
    people.book_all(16 * HOUR)
    anna = [c for c in sut.calls if c[1] == "OP-ANNA"]
    # Early shift 06:00-14:00 from the plant's start (06:00), breaks 09:30-09:45, 12:00-12:30.
    assert anna == [
        ("in", "OP-ANNA", "0"),
        ("out", "OP-ANNA", "3.5"),
        ("in", "OP-ANNA", "3.75"),
        ("out", "OP-ANNA", "6"),
        ("in", "OP-ANNA", "6.5"),
        ("out", "OP-ANNA", "8"),
    ]
    assert people.labour.hours().attendance == {"OP-ANNA": 7.25, "OP-CARLA": 7.25}


def test_labour_runs_from_the_start_to_the_completion_or_the_clock_out() -> None:
    people, sut = _people()
    people.act(0.0)
    product = people.plant.products[0]
    people.order_req["JO-1"] = OrderRequest("JO-1", product.id, 10, release_at=0.0)
    op = people.op_for("JO-1", people.line_units[product.line][0])
    assert op is not None
    op.started, op.started_at = True, 1 * HOUR
    people.act(1 * HOUR)  # the operator on the clock books labour from the start
    people.act(3.5 * HOUR)  # break: the clock-out ends the labour
    people.act(3.75 * HOUR)  # back: labour again
    op.completed = True
    people._stop_labour(op, 5 * HOUR)
    segment = f"JO-1/{op.segment.id}"
    assert [c for c in sut.calls if c[0] in ("start", "stop")] == [
        ("start", "OP-ANNA", segment, "1"),
        ("start", "OP-ANNA", segment, "3.75"),
        ("stop", "OP-ANNA", segment, "5"),
    ]
    hours = people.labour.hours()
    assert hours.by_person == {"OP-ANNA": 2.5 + 1.25}
    assert hours.by_order == {"JO-1": 3.75}


def test_labour_hours_per_person_and_order_are_reconciled_within_the_tolerance() -> None:
    truth = Records(labour=LabourHours({"P1": 8.0}, {"P1": 6.0}, {"JO-1": 6.0}))
    same = Records(labour=LabourHours({"P1": 8.0004}, {"P1": 6.0}, {"JO-1": 6.0}))
    assert reconcile(truth, same).exact
    short = Records(labour=LabourHours({"P1": 8.0}, {"P1": 5.5}, {}))
    assert reconcile(truth, short).mismatches == [
        "person P1: labour hours: plant 6, MES 5.5, difference -0.5 (tolerance 0.001)",
        "job_order JO-1: labour hours: plant 6, MES 0, difference -6 (tolerance 0.001)",
    ]
    # An adapter without the capability: labour is not compared at all.
    assert not [r for r in reconcile(truth, Records()).rows if "hours" in r.quantity]
