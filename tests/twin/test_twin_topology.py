"""Plant topology beyond a serial line of single machines: parallel stations (c work units
sharing one input buffer, each with its own identity), direct hand-offs written as
``capacity: 0``, and a broken machine holding its part until it is repaired."""

from __future__ import annotations

import pytest
from twin_test_plants import exponential, plant, work_unit

from twin.engine import Engine
from twin.hooks import BLOCKED, DOWN, STARVED


def test_capacity_zero_buffer_is_the_direct_hand_off_of_no_buffer() -> None:
    """``capacity: 0`` runs exactly as leaving the buffer out (same seed, same counts)."""
    units = [work_unit("L1-A", exponential(1.0)), work_unit("L1-B", exponential(1.1))]
    without = Engine(plant(units), seed=4, record_intervals=False)
    with_zero = Engine(plant(units, [("L1-A", "L1-B", 0)]), seed=4, record_intervals=False)
    for engine in (without, with_zero):
        engine.run_until(5_000.0)
    a, b = without.work_units, with_zero.work_units
    assert a["L1-B"].processed == b["L1-B"].processed > 3_000
    assert a["L1-A"].state_acc == b["L1-A"].state_acc
    assert with_zero.lines[0].buffers[0].code == "B1"


def _two_deterministic(cap: int, c1: float, c2: float) -> Engine:
    units = [work_unit("L1-A", c1), work_unit("L1-B", c2)]
    return Engine(plant(units, [("L1-A", "L1-B", cap)]), seed=1)


def test_a_machine_broken_while_blocked_holds_its_part_until_repaired() -> None:
    """A (1 s) blocked behind B (10 s) through a direct hand-off breaks at t=5 for 100 s:
    B finishes at t=11 and stays starved until A is repaired at t=105 (A does not hand
    the part it holds on while broken), then takes it at once."""
    engine = _two_deterministic(0, 1.0, 10.0)
    a, b = engine.work_units["L1-A"], engine.work_units["L1-B"]
    engine.run_until(5.0)
    assert a.state == BLOCKED
    engine.inject_failure("L1-A", 100.0)
    engine.run_until(50.0)
    assert (a.state, b.state) == (DOWN, STARVED)
    assert b.processed == 1 and b.consumed == 1
    engine.run_until(105.5)
    assert b.consumed == 2  # handed on at the repair (t=105), not before
    assert b.state_acc[STARVED] == pytest.approx(1.0 + (105.0 - 11.0))  # 0-1 s, 11-105 s


def test_a_machine_broken_while_starved_takes_no_part_until_repaired() -> None:
    """B (1 s) starved behind A (10 s) breaks at t=5 for 20 s: A's units of t=10 and t=20
    wait in the buffer (B takes none while broken), and B takes the first at t=25."""
    engine = _two_deterministic(5, 10.0, 1.0)
    b = engine.work_units["L1-B"]
    buffer = engine.lines[0].buffers[0]
    engine.run_until(5.0)
    assert b.state == STARVED
    engine.inject_failure("L1-B", 20.0)
    engine.run_until(24.9)
    assert (b.state, b.consumed, len(buffer.items)) == (DOWN, 0, 2)
    engine.run_until(25.5)
    assert (b.consumed, len(buffer.items)) == (1, 1)


def test_parallel_station_units_share_the_input_buffer_and_keep_their_identities() -> None:
    """A station of two unequal fillers behind one feeder: each filler has its own counts
    and states; together they make what the feeder sends (flow conservation), the faster
    one more; a breakdown of one leaves the other working."""
    model = plant(
        [
            work_unit("L1-FEED", 1.0),
            work_unit("L1-F1", 1.5, station="L1-FILL", equipment_class="Filler"),
            work_unit("L1-F2", 3.0, station="L1-FILL", equipment_class="Filler"),
        ],
        [("L1-FEED", "L1-FILL", 4)],
    )
    engine = Engine(model, seed=2)
    engine.run_until(3_000.0)
    feed, f1, f2 = (engine.work_units[c] for c in ("L1-FEED", "L1-F1", "L1-F2"))
    buffered = len(engine.lines[0].buffers[0].items)
    assert feed.processed == f1.consumed + f2.consumed + buffered + (feed.state == BLOCKED)
    # 1/1.5 + 1/3 = 1 unit/s: the station keeps up with the feeder (blocked at most briefly)
    assert f1.processed == pytest.approx(3_000 / 1.5, abs=3)
    assert f2.processed == pytest.approx(3_000 / 3.0, abs=3)
    engine.inject_failure("L1-F1", 600.0)
    before = f2.processed
    engine.run_until(3_600.0)
    assert f2.processed - before == pytest.approx(200, abs=2)  # F2 alone: 600 s / 3 s
    engine.run_until(3_601.0)  # the repair at t=3600 closes the down interval
    assert f1.state_acc[DOWN] == pytest.approx(600.0)
    summary = engine.finish()
    assert {"L1-F1", "L1-F2"} <= set(summary["work_units"])


def test_rework_to_an_earlier_station_completes_the_job_order_exactly() -> None:
    """F -> A -> B, B's inspection sends a fifth of the units back to A (through A's full
    input buffer: a rework return never blocks): the job order still completes with
    exactly its quantity made, and A and B each processed every visit."""
    model = plant(
        [
            work_unit("L1-F", 0.5),
            work_unit("L1-A", exponential(1.0)),
            work_unit("L1-B", exponential(0.8), rework={"to": "L1-A", "probability": 0.2}),
            work_unit("L1-C", 0.1),
        ],
        [("L1-F", "L1-A", 2), ("L1-A", "L1-B", 2)],
        continuous=False,
        order_stream={"job_orders": [{"id": "JO-1", "product": "P", "quantity": 400, "due": 1e6}]},
    )
    engine = Engine(model, seed=5)
    engine.run_until(5_000.0)
    summary = engine.finish()
    job = summary["job_orders"]["JO-1"]
    assert (job["status"], job["made"], job["scrapped"]) == ("completed", 400, 0)
    a, b = engine.work_units["L1-A"], engine.work_units["L1-B"]
    assert b.reworked > 50
    assert a.processed == b.processed == 400 + b.reworked
    assert engine.work_units["L1-C"].processed == 400


def test_a_work_unit_waiting_for_an_operator_is_idle_in_the_ledger() -> None:
    """Two machines, one operator attending each cycle: the second machine waits, idle
    "waiting for an operator (run)", and the ledger's state intervals say so."""
    model = plant(
        [
            work_unit("L1-A", 1.0, operator_skill="run", operator_attends="cycle"),
            work_unit("L1-B", 1.0, operator_skill="run", operator_attends="cycle"),
        ],
        [("L1-A", "L1-B", 5)],
        shift_calendars=[
            {
                "id": "DAY",
                "shifts": [
                    {"name": "a", "start": "00:00", "end": "12:00"},
                    {"name": "b", "start": "12:00", "end": "00:00"},
                ],
            }
        ],
        operators=[{"id": "OP-1", "skills": ["run"], "calendar": "DAY"}],
    )
    engine = Engine(model, seed=1)
    engine.run_until(100.0)
    engine.finish()
    a, b = engine.work_units["L1-A"], engine.work_units["L1-B"]
    assert a.processed + b.processed == pytest.approx(100, abs=1)  # one operator: 1 unit/s
    waits = [
        i
        for i in engine.ledger.state_intervals("L1-B")
        if i["reason"] == "idle: waiting for an operator (run)"
    ]
    assert waits and sum(i["end"] - i["start"] for i in waits) == pytest.approx(50, abs=2)
