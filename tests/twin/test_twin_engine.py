"""The engine's behaviour: flow, states, shifts, setups, scrap, lots, control, observers."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from twin_test_plants import exponential, plant, work_unit

from plant_models.loader import load_plant_model
from plant_models.schema import PlantModel
from twin.bench import events_scheduled
from twin.engine import CannotKeepPace, ControlError, Engine
from twin.hooks import PACKML_FOR_STATE, PackMLState
from twin.streams import substream


def _two_products(**line_extra: Any) -> dict[str, Any]:
    """A two-station line making P1 and P2 from lot-tracked material M."""
    return {
        "plant": {"code": "T", "start": "2026-01-05T06:00:00+00:00"},
        "lines": [
            {
                "code": "L1",
                "work_units": [
                    {
                        "code": "L1-A",
                        "equipment_class": "Filler",
                        "cycle_time": 1.0,
                        "setup": {"changeover": 50.0, "same_product": 5.0},
                    },
                    {"code": "L1-B", "equipment_class": "Packer", "cycle_time": 0.5},
                ],
                "buffers": [
                    {"code": "L1-B1", "upstream": "L1-A", "downstream": "L1-B", "capacity": 10}
                ],
                **line_extra,
            }
        ],
        "materials": [{"id": "M", "unit": "kg"}, {"id": "FG1"}, {"id": "FG2"}],
        "material_lots": [
            {"id": "LOT-A", "material": "M", "quantity": 30},
            {"id": "LOT-B", "material": "M", "quantity": 100},
            {"id": "LOT-X", "material": "M", "quantity": 50, "deviation": "wrong_material"},
        ],
        "products": [
            {
                "id": p,
                "material": f"FG{i + 1}",
                "line": "L1",
                "segments": [
                    {
                        "id": "FILL",
                        "equipment_class": "Filler",
                        "standard_run_time": 1,
                        "materials": [{"material": "M", "quantity_per_unit": 1.0}],
                    }
                ],
            }
            for i, p in enumerate(("P1", "P2"))
        ],
        "order_stream": {
            "job_orders": [
                {"id": "J1", "product": "P1", "quantity": 20, "due": "1h"},
                {"id": "J2", "product": "P1", "quantity": 20, "due": "1h"},
                {"id": "J3", "product": "P2", "quantity": 20, "due": "2h"},
            ]
        },
    }


class Recorder:
    """A PlantObserver that keeps everything it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_state(
        self,
        t: float,
        work_unit: str,
        state: str,
        packml_state: PackMLState,
        reason: str,
        wall: float | None,
    ) -> None:
        self.calls.append(("state", t, work_unit, state, packml_state, reason, wall))

    def on_counters(
        self,
        t: float,
        work_unit: str,
        processed: int,
        defective: int,
        consumed: int,
        wall: float | None,
    ) -> None:
        self.calls.append(("counters", t, work_unit, processed, defective, consumed))

    def on_value(
        self, t: float, work_unit: str, name: str, value: float, wall: float | None
    ) -> None:
        self.calls.append(("value", t, work_unit, name, value))

    def on_job(
        self,
        t: float,
        work_unit: str,
        job_order: str,
        product: str,
        material_lot: str,
        wall: float | None,
    ) -> None:
        self.calls.append(("job", t, work_unit, job_order, product))

    def on_alarm(
        self,
        t: float,
        work_unit: str,
        alarm: str,
        severity: int,
        message: str,
        active: bool,
        wall: float | None,
    ) -> None:
        self.calls.append(("alarm", t, work_unit, alarm, active))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == kind]


def test_same_seed_gives_the_same_ledger_bit_for_bit() -> None:
    model = load_plant_model("bottling_line")
    runs = []
    for seed in (4, 4, 5):
        engine = Engine(model, seed)
        engine.run_until(3600.0)
        summary = engine.finish()
        summary["intervals"] = engine.ledger.state_intervals()
        runs.append(json.dumps(summary, sort_keys=True))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_adding_a_line_does_not_shift_the_draws_of_another() -> None:
    one = _two_products()
    two = _two_products()
    extra = json.loads(json.dumps(one["lines"][0]).replace("L1", "L2"))
    two["lines"].append(extra)
    results = []
    for data in (one, two):
        engine = Engine(PlantModel.model_validate(data), 9)
        engine.run_until(2000.0)
        results.append(engine.ledger.state_intervals("L1-A"))
    assert results[0] == results[1]
    a = substream(Engine(PlantModel.model_validate(one), 9).root, "L1-A/cycle").random(3)
    b = substream(Engine(PlantModel.model_validate(two), 9).root, "L1-A/cycle").random(3)
    assert a.tolist() == b.tolist()


def test_blocking_after_service_and_starving_are_recorded_with_reasons() -> None:
    model = plant(
        [
            work_unit("L1-A", exponential(1.0)),
            work_unit("L1-B", exponential(1.5)),
            work_unit("L1-C", exponential(0.5)),
        ],
        [("L1-A", "L1-B", 2), ("L1-B", "L1-C", 2)],
    )
    engine = Engine(model, 1)
    engine.run_until(5000.0)
    summary = engine.finish()
    share = {code: wu["state_share"] for code, wu in summary["work_units"].items()}
    assert share["L1-A"]["blocked"] > 0.2
    assert share["L1-C"]["starved"] > 0.5
    assert share["L1-B"]["running"] > 0.85
    reasons = {(i["state"], i["reason"]) for i in engine.ledger.state_intervals()}
    assert ("blocked", "blocked: downstream full") in reasons
    assert ("starved", "starved: upstream empty") in reasons
    # the bottleneck paces the line: output = B's rate while it runs
    made = summary["lines"]["L1"]["made"]
    assert made == pytest.approx(share["L1-B"]["running"] * 5000 / 1.5, rel=0.05)


def test_work_unit_idles_when_no_operator_with_the_skill_is_on_shift() -> None:
    model = plant(
        [work_unit("L1-A", 10.0, operator_skill="filling")],
        shift_calendars=[
            {
                "id": "DAY",
                "shifts": [
                    {
                        "name": "day",
                        "start": "06:00",
                        "end": "14:00",
                        "breaks": [{"start": "10:00", "end": "10:30"}],
                    }
                ],
            }
        ],
        operators=[{"id": "OP1", "skills": ["filling"], "calendar": "DAY"}],
    )
    engine = Engine(model, 1)
    engine.run_until(86_400.0)
    summary = engine.finish()
    running = summary["work_units"]["L1-A"]["state_seconds"]["running"]
    assert running == pytest.approx(7.5 * 3600, abs=10.0)
    idle = [i for i in engine.ledger.state_intervals("L1-A") if i["state"] == "idle"]
    assert {i["reason"] for i in idle} == {"idle: no operator on shift"}
    assert any(i["start"] == pytest.approx(4 * 3600, abs=10) for i in idle)  # the break


def test_setup_when_the_job_order_changes_and_per_job_counts_and_genealogy() -> None:
    engine = Engine(PlantModel.model_validate(_two_products()), 1)
    engine.run_until(3 * 3600.0)
    summary = engine.finish()
    jobs = summary["job_orders"]
    assert [jobs[j]["status"] for j in ("J1", "J2", "J3")] == ["completed"] * 3
    assert all(jobs[j]["made"] == 20 for j in jobs)
    assert jobs["J1"]["work_units"]["L1-A"]["started"] == 20
    assert jobs["J3"]["work_units"]["L1-B"]["made"] == 20
    setups = [i for i in engine.ledger.state_intervals("L1-A") if i["state"] == "setup"]
    assert [(s["reason"], s["end"] - s["start"]) for s in setups] == [
        ("setup: changeover to P1", 50.0),
        ("setup: job order change to J2", 5.0),
        ("setup: changeover to P2", 50.0),
    ]
    # 60 kg from LOT-A (30) then LOT-B; the deviation lot is never picked by itself
    consumed = {(c["job_order"], c["lot"]): c["quantity"] for c in summary["lots"]["consumed"]}
    assert consumed == {
        ("J1", "LOT-A"): 20.0,
        ("J2", "LOT-A"): 10.0,
        ("J2", "LOT-B"): 10.0,
        ("J3", "LOT-B"): 20.0,
    }
    edges = {(e["from_lot"], e["to_lot"]) for e in summary["lots"]["genealogy"]}
    assert edges == {
        ("LOT-A", "LOT-J1"),
        ("LOT-A", "LOT-J2"),
        ("LOT-B", "LOT-J2"),
        ("LOT-B", "LOT-J3"),
    }
    produced = {p["lot"]: p["quantity"] for p in summary["lots"]["produced"]}
    assert produced == {"LOT-J1": 20, "LOT-J2": 20, "LOT-J3": 20}


def test_material_shortage_starves_until_a_lot_is_staged_and_forced_lots_are_used() -> None:
    data = _two_products()
    data["material_lots"] = [
        {"id": "LOT-A", "material": "M", "quantity": 25},
        {
            "id": "LOT-X",
            "material": "M",
            "quantity": 10,
            "deviation": "expired",
            "expiry": "2025-01-01",
        },
    ]
    engine = Engine(PlantModel.model_validate(data), 1)
    engine.run_until(600.0)
    assert engine.work_units["L1-A"].state == "starved"
    assert engine.work_units["L1-A"].reason == "starved: material M short"
    engine.load_material_lot("L1-A", "LOT-X")
    engine.add_material_lot("LOT-C", "M", 100.0)
    engine.run_until(3 * 3600.0)
    summary = engine.finish()
    used = {(c["job_order"], c["lot"]): c["quantity"] for c in summary["lots"]["consumed"]}
    assert used[("J2", "LOT-X")] == 10.0
    assert summary["job_orders"]["J3"]["status"] == "completed"


def test_scrap_follows_the_scrap_probability() -> None:
    p = 0.05
    engine = Engine(plant([work_unit("L1-A", 1.0, scrap_probability=p)]), 2)
    engine.run_until(40_000.0)
    line = engine.finish()["lines"]["L1"]
    n = line["made"] + line["scrapped"]
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(line["scrapped"] / n - p) < 4 * sd


def test_clock_failures_strike_an_idle_work_unit_but_operating_failures_do_not() -> None:
    failures = [
        {"name": "c", "basis": "clock", "time_to_failure": 100.0, "time_to_repair": 10.0},
        {"name": "o", "basis": "operating", "time_to_failure": 100.0, "time_to_repair": 10.0},
    ]
    model = plant([work_unit("L1-A", 1.0, failures=failures)], continuous=False)
    engine = Engine(model, 1)
    engine.run_until(1000.0)
    modes = [f["mode"] for f in engine.ledger.failures]
    assert modes and set(modes) == {"c"}


def test_store_and_start_queues_a_job_and_refuses_bad_commands_clearly() -> None:
    engine = Engine(PlantModel.model_validate(_two_products()), 1, auto_dispatch=False)
    engine.run_until(100.0)
    assert engine.work_units["L1-A"].state == "idle"
    engine.store_and_start("L1-A", "MES-1", "P2", 5)
    engine.run_until(400.0)
    assert engine.finish()["job_orders"]["MES-1"]["made"] == 5
    with pytest.raises(ControlError, match="unknown product 'NOPE'"):
        engine.store_and_start("L1-A", "MES-2", "NOPE", 5)
    with pytest.raises(ControlError, match="already dispatched"):
        engine.store_and_start("L1", "MES-1", "P1", 5)
    with pytest.raises(ControlError, match="no line or work unit 'X'"):
        engine.store_and_start("X", "MES-3", "P1", 5)
    with pytest.raises(ControlError, match="quantity must be >= 1"):
        engine.store_and_start("L1", "MES-4", "P1", 0)


def test_stop_takes_the_work_unit_offline_until_reset() -> None:
    engine = Engine(plant([work_unit("L1-A", 1.0)]), 1)
    engine.run_until(10.5)
    engine.stop("L1-A")
    engine.run_until(50.0)
    wu = engine.work_units["L1-A"]
    assert (wu.state, wu.processed) == ("offline", 11)
    engine.reset("L1-A")
    engine.run_until(60.0)
    assert wu.state == "running" and wu.processed == 20


def test_observers_get_states_counters_values_jobs_and_alarms() -> None:
    model = load_plant_model("bottling_line")
    engine = Engine(model, 1, blocked_alarm_after=30.0)
    recorder = Recorder()
    engine.add_observer(recorder)
    engine.inject_failure("BTL1-CAPPER", 120.0, "injected jam")
    engine.run_until(1800.0)
    states = recorder.of("state")
    assert {s[2] for s in states} == {wu.code for wu in model.all_work_units()}
    assert all(s[4] == PACKML_FOR_STATE[s[3]] for s in states)
    assert ("alarm", 0.0, "BTL1-CAPPER", "breakdown", True) in recorder.calls
    assert ("alarm", 120.0, "BTL1-CAPPER", "breakdown", False) in recorder.calls
    assert any(a[3] in ("blocked", "starved") and a[4] for a in recorder.of("alarm"))
    per_unit: dict[str, list[int]] = {}
    for c in recorder.of("counters"):
        per_unit.setdefault(c[2], []).append(c[3])
    assert all(seq == sorted(seq) for seq in per_unit.values())  # cumulative, never down
    assert per_unit["BTL1-FILLER"][-1] == engine.work_units["BTL1-FILLER"].processed
    names = {(v[2], v[3]) for v in recorder.of("value")}
    assert ("BTL1-FILLER", "FillWeight") in names
    assert ("job", 0.0, "BTL1-FILLER", "JO-1001", "WATER-500") in recorder.calls


def test_value_drift_can_be_changed_while_running() -> None:
    model = load_plant_model("bottling_line")
    engine = Engine(model, 1)
    engine.run_until(600.0)
    engine.set_value_drift("BTL1-FILLER", "FillWeight", 3600.0)  # +1 g per second
    engine.run_until(700.0)
    value = engine.values[("BTL1-FILLER", "FillWeight")]
    assert value.last is not None and value.last > 502.0 + 80.0
    with pytest.raises(ControlError, match="no process value 'Nope'"):
        engine.set_value_drift("BTL1-FILLER", "Nope", 1.0)


def test_ledger_streams_records_while_running() -> None:
    engine = Engine(PlantModel.model_validate(_two_products()), 1)
    records: list[dict[str, Any]] = []
    engine.ledger.subscribe(records.append)
    engine.run_until(3 * 3600.0)
    kinds = {r["kind"] for r in records}
    assert {"state", "job", "lot_consumed", "lot_produced"} <= kinds
    done = [r for r in records if r["kind"] == "job" and r["event"] == "completed"]
    assert [r["job_order"] for r in done] == ["J1", "J2", "J3"]


def test_paced_run_follows_the_wall_clock() -> None:
    engine = Engine(plant([work_unit("L1-A", 1.0)]), 1, speed=100.0)
    t0 = time.monotonic()
    engine.run_until(20.5)
    assert time.monotonic() - t0 >= 20.5 / 100.0 * 0.95
    assert engine.work_units["L1-A"].processed == 20


def test_paced_run_reports_when_it_cannot_keep_pace() -> None:
    model = load_plant_model("bottling_line")
    engine = Engine(model, 1, speed=1e6, max_lag=0.01)
    with pytest.raises(CannotKeepPace, match="cannot keep pace at speed 1e"):
        engine.run_until(20_000.0)
    lenient = Engine(model, 1, speed=1e6, strict=False)
    lenient.run_until(5_000.0)
    assert lenient.max_lag_seen > 0.0


def test_injected_breakdown_interrupts_a_cycle_which_resumes_after_repair() -> None:
    engine = Engine(plant([work_unit("L1-A", 100.0)]), 1)
    engine.run_until(10.0)
    engine.inject_failure("L1-A", 50.0, "injected jam")
    engine.run_until(149.0)
    assert engine.work_units["L1-A"].processed == 0
    engine.run_until(151.0)
    assert engine.work_units["L1-A"].processed == 1
    engine.start_maintenance("L1-A", 30.0)
    engine.run_until(160.0)
    assert engine.work_units["L1-A"].state == "maintenance"
    engine.finish()
    states = [
        (i["state"], i["reason"], i["start"], i["end"])
        for i in engine.ledger.state_intervals("L1-A")
    ]
    assert states[:3] == [
        ("running", "", 0.0, 10.0),
        ("down", "down: injected jam", 10.0, 60.0),
        ("running", "", 60.0, 151.0),
    ]
    assert states[3][:2] == ("maintenance", "maintenance: planned")
    with pytest.raises(ControlError, match="duration must be > 0"):
        engine.inject_failure("L1-A", 0.0)


def test_a_waiting_work_unit_goes_offline_at_once_and_holds_its_next_unit_until_reset() -> None:
    model = plant([work_unit("L1-A", 10.0), work_unit("L1-B", 1.0)], [("L1-A", "L1-B", 5)])
    engine = Engine(model, 1)
    engine.run_until(12.0)
    b = engine.work_units["L1-B"]
    assert (b.state, b.processed) == ("starved", 1)
    engine.stop("L1-B")
    assert b.state == "offline"
    engine.run_until(100.0)
    assert b.processed == 1  # the unit that came at t=20 waits on the stopped machine
    engine.reset("L1-B")
    engine.run_until(100.5)
    assert b.state == "running"


def test_a_work_unit_stopped_while_waiting_and_reset_before_its_wait_ends_waits_again() -> None:
    # Starved: shown starved again at the reset, not offline until the next unit comes.
    model = plant([work_unit("L1-A", 10.0), work_unit("L1-B", 1.0)], [("L1-A", "L1-B", 5)])
    engine = Engine(model, 1)
    engine.run_until(12.0)
    b = engine.work_units["L1-B"]
    engine.stop("L1-B")
    engine.run_until(15.0)
    assert b.state == "offline"
    engine.reset("L1-B")
    assert (b.state, b.reason) == ("starved", "starved: upstream empty")
    engine.run_until(20.5)
    assert b.state == "running" and b.processed == 1
    # Idle (no job order): idle again, and a job order dispatched later starts it.
    engine = Engine(plant([work_unit("L1-A", 1.0)], continuous=False), 1, auto_dispatch=False)
    engine.run_until(5.0)
    a = engine.work_units["L1-A"]
    assert a.state == "idle"
    engine.stop("L1-A")
    engine.reset("L1-A")
    assert (a.state, a.reason) == ("idle", "idle: no job order")
    engine.store_and_start("L1-A", "J1", "P", 3)
    engine.run_until(20.0)
    assert a.processed == 3


def test_the_summary_is_strict_json() -> None:
    engine = Engine(load_plant_model("tablet_line"), 1)
    engine.run_until(86_400.0)
    text = json.dumps(engine.finish(), allow_nan=False)
    assert json.loads(text)["plant"] == "PHARMA"


def _valued(*values: tuple[str, float]) -> PlantModel:
    """One work unit with process values (name, update period), normal noise."""
    return plant(
        [
            work_unit(
                "L1-A",
                1.0,
                process_values=[
                    {
                        "name": name,
                        "distribution": {"kind": "normal", "mean": 50.0, "sd": 1.0},
                        "update_period": period,
                    }
                    for name, period in values
                ],
            )
        ]
    )


def test_values_of_one_period_are_sampled_in_one_scan_each_from_its_own_stream() -> None:
    def run(*values: tuple[str, float]) -> tuple[Engine, Recorder]:
        engine = Engine(_valued(*values), 1)
        recorder = Recorder()
        engine.add_observer(recorder)
        engine.run_until(100.0)
        return engine, recorder

    both, rec_both = run(("V1", 10.0), ("V2", 10.0), ("V3", 25.0))
    alone, rec_alone = run(("V1", 10.0), ("V3", 25.0))
    # A PLC scan: the second value of period 10 s costs no event of its own.
    assert events_scheduled(both.env) == events_scheduled(alone.env)
    times = {
        name: [c[1] for c in rec_both.of("value") if c[3] == name] for name in ("V1", "V2", "V3")
    }
    assert times["V1"] == times["V2"] == [10.0 * k for k in range(10)]
    assert times["V3"] == [0.0, 25.0, 50.0, 75.0]
    # Each value draws from its own named stream: adding V2 moves none of V1's draws.
    v1 = [c[4] for c in rec_both.of("value") if c[3] == "V1"]
    assert v1 == [c[4] for c in rec_alone.of("value") if c[3] == "V1"]
    assert v1 != [c[4] for c in rec_both.of("value") if c[3] == "V2"]
    assert both.values[("L1-A", "V1")].figures() == alone.values[("L1-A", "V1")].figures()


def test_paced_run_stamps_what_it_publishes_with_the_wall_time_of_its_simulated_time() -> None:
    stamps: list[tuple[float, float | None]] = []

    class Stamps(Recorder):
        def on_value(
            self, t: float, work_unit: str, name: str, value: float, wall: float | None
        ) -> None:
            stamps.append((t, wall))

    speed = 100.0
    engine = Engine(_valued(("V1", 0.5)), 1, speed=speed)
    engine.add_observer(Stamps())
    engine.run_until(10.0)
    assert [t for t, _ in stamps] == [0.5 * k for k in range(20)]
    # Events are handled in batches, but each is stamped exactly: wall = wall0 + t / speed.
    wall0 = engine.wall(0.0)
    assert wall0 is not None
    assert all(w == pytest.approx(wall0 + t / speed, abs=1e-6) for t, w in stamps)


def test_process_values_follow_the_product_on_the_work_unit_and_stay_in_its_spec() -> None:
    """Issue 13: the press weighed 500 mg tablets for every product while IBU400's spec is
    388-412 mg. Each product now has its own distribution, so a clean run is in spec."""
    model = load_plant_model("tablet_line")
    spec = {
        p.id: next(c for s in p.segments for c in s.inspections if c.name == "tablet_weight")
        for p in model.products
    }
    engine = Engine(model, 11)
    recorder = Recorder()
    engine.add_observer(recorder)
    engine.run_until(30 * 3600.0)
    product = ""
    weights: dict[str, list[float]] = {}
    for call in recorder.calls:
        if call[0] == "job" and call[2] == "TAB1-PRESS":
            product = call[4]
        elif call[0] == "value" and call[2] == "TAB1-PRESS" and call[3] == "TabletWeight":
            weights.setdefault(product, []).append(call[4])
    assert set(weights) >= {"PCM500", "IBU400"}
    for p, values in weights.items():
        if not p:
            continue  # before the first job order: the default distribution
        lsl, usl = spec[p].lsl, spec[p].usl
        assert lsl is not None and usl is not None
        assert all(lsl <= v <= usl for v in values), (p, min(values), max(values))
        assert abs(sum(values) / len(values) - spec[p].target) < 1.0, p
