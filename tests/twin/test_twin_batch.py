"""Batch work units (ISA-88 phases, ``twin.engine.batch``): phases in recipe order, their
durations as specified, process values per phase, what observers are told."""

from __future__ import annotations

import itertools
import math
from statistics import mean, stdev
from typing import Any

from scipy import stats
from twin_test_plants import plant, work_unit

from plant_models.distributions import Distribution
from plant_models.schema import PlantModel
from twin.engine import Engine
from twin.hooks import PACKML_FOR_STATE, PackMLState

PHASES: list[dict[str, Any]] = [
    {"name": "Charge", "duration": {"kind": "normal", "mean": 300, "sd": 30, "min": 100}},
    {
        "name": "Heat",
        "duration": {"kind": "uniform", "low": 600, "high": 900},
        "values": {"Temperature": {"kind": "ramp", "start": 20, "end": 80}},
    },
    {
        "name": "Hold",
        "duration": {"kind": "exponential", "mean": 600},
        "values": {
            "Temperature": {"kind": "normal", "mean": 80, "sd": 0.5},
            "AgitatorSpeed": {"kind": "uniform", "low": 40, "high": 60},
        },
    },
    {"name": "Discharge", "duration": 120},
]


def _vessel_plant(**vessel: Any) -> PlantModel:
    """A fast feeder, then a mixing vessel (the bottleneck) with the four phases above."""
    spec = {
        "code": "L1-VESSEL",
        "equipment_class": "Station",
        "batch": {"size": 2000, "unit": "l", "phases": PHASES},
        "process_values": [
            {
                "name": "Temperature",
                "unit": "degC",
                "distribution": {"kind": "normal", "mean": 20, "sd": 0.2},
                "update_period": 10,
                "eu_range": [0, 120],
            },
            {
                "name": "AgitatorSpeed",
                "unit": "1/min",
                "distribution": 0,
                "update_period": 10,
                "eu_range": [0, 100],
            },
        ],
        **vessel,
    }
    return plant([work_unit("L1-FEED", 10.0), spec], [("L1-FEED", "L1-VESSEL", 2)])


class _Recorder:
    """A ``PlantObserver`` that is also a ``BatchObserver``."""

    def __init__(self) -> None:
        self.states: list[tuple[float, str, PackMLState]] = []
        self.values: list[tuple[float, str, float]] = []
        self.phases: list[tuple[float, str, float, int, str]] = []

    def on_state(self, t: float, wu: str, state: str, packml: PackMLState, *_: Any) -> None:
        if wu == "L1-VESSEL":
            self.states.append((t, state, packml))

    def on_counters(self, *_: Any) -> None:
        pass

    def on_value(self, t: float, wu: str, name: str, value: float, _: float | None) -> None:
        self.values.append((t, name, value))

    def on_job(self, *_: Any) -> None:
        pass

    def on_alarm(self, *_: Any) -> None:
        pass

    def on_phase(
        self,
        t: float,
        wu: str,
        batch_id: str,
        quantity: float,
        number: int,
        name: str,
        _: float | None,
    ) -> None:
        self.phases.append((t, batch_id, quantity, number, name))


def test_each_batch_runs_its_phases_in_recipe_order_back_to_back_in_execute() -> None:
    engine = Engine(_vessel_plant(), 3)
    rec = _Recorder()
    engine.add_observer(rec)
    engine.run_until(20 * 3600)
    batch = engine.work_units["L1-VESSEL"].batch
    assert batch is not None
    log = batch.log
    assert len(log) >= 4 * 30
    names = [p["name"] for p in PHASES]
    by_batch: dict[str, list[Any]] = {}
    for record in log:
        by_batch.setdefault(record.batch_id, []).append(record)
    for records in list(by_batch.values())[:-1]:
        assert [r.name for r in records] == names
        assert [r.number for r in records] == [1, 2, 3, 4]
        for a, b in itertools.pairwise(records):
            assert a.end == b.start  # no gap between phases
    # Counts stay one unit per batch: what the MES counts is the number of batches made.
    vessel = engine.work_units["L1-VESSEL"]
    complete = len(log) // 4
    assert vessel.processed == complete
    assert batch.batches in (complete, complete + 1)  # the last one may be in its phases
    # All phases run in the PackML state Execute: no state change inside a batch.
    first, last = log[0].start, log[-1].end
    inside = [s for s in rec.states if first < s[0] < last]
    starts = {r.start for r in log if r.number == 1}
    for t, state, packml in inside:
        assert state != "running" or packml == PACKML_FOR_STATE["running"] == PackMLState.EXECUTE
        if state != "running":  # a wait for the next batch, never inside one
            assert not any(r.start < t < r.end for r in log), (t, state)
    assert starts
    # Observers are told each phase with the batch id and quantity, in recipe order.
    told = [(number, name) for _, _, _, number, name in rec.phases[1:8]]
    recipe = [(1, "Charge"), (2, "Heat"), (3, "Hold"), (4, "Discharge")]
    assert told == [*recipe, *recipe[:3]]
    assert [t for t, *_ in rec.phases[1 : len(log) + 1]] == [r.start for r in log]
    assert {q for _, _, q, _, _ in rec.phases} == {2000}
    # Without a job order (a continuous line) the batch id is the line's, numbered.
    assert rec.phases[0][1:] == ("", 2000, 0, "")  # told on registering: no batch yet
    assert [p[1] for p in rec.phases[1:6]] == ["L1-B01"] * 4 + ["L1-B02"]
    assert log[4].batch_id == "L1-B02"
    assert engine.ledger.summary()["work_units"]["L1-VESSEL"]["batches"] == batch.batches


def test_phase_durations_match_their_distributions_within_a_99_percent_ci() -> None:
    engine = Engine(_vessel_plant(), 5)
    engine.run_until(400 * 3600)
    batch = engine.work_units["L1-VESSEL"].batch
    assert batch is not None
    for number, phase in enumerate(PHASES, 1):
        durations = [r.end - r.start for r in batch.log if r.number == number]
        assert len(durations) > 500
        expected = _mean(phase["duration"])
        if len(set(durations)) == 1:  # deterministic
            assert durations[0] == expected
            continue
        n = len(durations)
        half = stats.t.ppf(0.995, n - 1) * stdev(durations) / math.sqrt(n)
        assert abs(mean(durations) - expected) < half, (phase["name"], mean(durations), half)


def _mean(spec: Any) -> float:
    from pydantic import TypeAdapter

    return float(TypeAdapter(Distribution).validate_python(spec).mean())


def test_process_values_follow_each_phase_and_stay_within_its_bounds() -> None:
    engine = Engine(_vessel_plant(), 5)
    rec = _Recorder()
    engine.add_observer(rec)
    engine.run_until(10 * 3600)
    batch = engine.work_units["L1-VESSEL"].batch
    assert batch is not None

    def phase_at(t: float) -> int:
        for r in batch.log:
            if r.start <= t < r.end:
                return r.number
        return 0

    seen: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for t, name, value in rec.values:
        seen.setdefault((phase_at(t), name), []).append((t, value))
    heat = seen[(2, "Temperature")]
    assert heat and all(20 <= v <= 80 for _, v in heat)
    # The set point ramps up within each heating phase.
    for r in (r for r in batch.log if r.number == 2):
        ramp = [v for t, v in heat if r.start <= t < r.end]
        assert ramp == sorted(ramp)
        assert ramp[0] < 30 and ramp[-1] > 70
    assert all(40 <= v < 60 for _, v in seen[(3, "AgitatorSpeed")])
    assert all(abs(v - 80) < 5 * 0.5 for _, v in seen[(3, "Temperature")])
    # Outside its phases a value follows its own distribution.
    # (published on change only: the first sample after the holding phase.)
    outside = [v for k in (0, 1, 4) for _, v in seen.get((k, "AgitatorSpeed"), [])]
    assert outside and all(v == 0 for v in outside)
    assert all(abs(v - 20) < 5 * 0.2 for _, v in seen[(1, "Temperature")])


def test_a_breakdown_interrupts_a_phase_which_resumes_after_the_repair() -> None:
    engine = Engine(_vessel_plant(), 7)
    engine.run_until(100.0)
    batch = engine.work_units["L1-VESSEL"].batch
    assert batch is not None and batch.number == 1
    engine.inject_failure("L1-VESSEL", 500.0, "agitator jam")
    engine.run_until(10_000.0)
    charge = batch.log[0]
    assert charge.name == "Charge"
    assert charge.end - charge.start == charge.planned + 500.0
    assert [r.name for r in batch.log[:4]] == ["Charge", "Heat", "Hold", "Discharge"]
    engine.finish()
    states = [(i["state"], i["start"]) for i in engine.ledger.state_intervals("L1-VESSEL")]
    assert ("down", 100.0) in states
