"""Ground truth from the observer stream, and the direct collector's store-and-forward."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

from mes_core.schemas.plant_events import CountEvent, IngestResult, PlantEvent, StateChangeEvent
from twin.hooks import PackMLState
from twin.scenario.link import DirectCollector, Sampling
from twin.scenario.report import StateInterval
from twin.scenario.truth import TruthRecorder, state_timeline

START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def _feed(obs: TruthRecorder | DirectCollector) -> None:
    obs.on_state(0.0, "F", "idle", PackMLState.IDLE, "", None)
    obs.on_job(5.0, "F", "JO-1", "W", "LOT-1", None)
    obs.on_state(10.0, "F", "running", PackMLState.EXECUTE, "", None)
    obs.on_counters(20.0, "F", 10, 1, 10, None)
    obs.on_value(21.0, "F", "FillWeight", 502.1, None)
    obs.on_state(30.0, "F", "down", PackMLState.HELD, "valve jam", None)
    obs.on_counters(30.0, "F", 15, 2, 15, None)


def test_truth_recorder_keeps_counts_and_state_seconds_per_work_unit_and_order() -> None:
    truth = TruthRecorder()
    _feed(truth)
    truth.close(60.0)
    rec = truth.records()
    unit = rec.work_units["F"]
    assert (unit.good, unit.scrap) == (13, 2)
    assert unit.state_seconds == {"idle": 10.0, "running": 20.0, "down": 30.0}
    assert (rec.job_orders["JO-1"].good, rec.job_orders["JO-1"].scrap) == (13, 2)
    assert [(i.state, i.start, i.end) for i in truth.intervals] == [
        ("idle", 0.0, 10.0),
        ("running", 10.0, 30.0),
        ("down", 30.0, 60.0),
    ]


class _FlakyMes:
    def __init__(self) -> None:
        self.up = False
        self.seen: set[tuple[str, int]] = set()
        self.events: list[PlantEvent] = []

    def post(self, batch: list[PlantEvent]) -> IngestResult:
        if not self.up:
            raise ConnectionError("MES down")
        new = [e for e in batch if (e.source, e.sequence) not in self.seen]
        self.seen.update((e.source, e.sequence) for e in new)
        self.events.extend(new)
        return IngestResult(accepted=len(new), duplicates=len(batch) - len(new), received_at=START)


def test_direct_collector_sends_deltas_and_replays_after_the_mes_comes_back() -> None:
    mes = _FlakyMes()
    link = DirectCollector(
        mes.post,
        source="twin:test",
        start=START,
        characteristics={("F", "FillWeight"): Sampling("fw")},
        batch_size=2,
        count_period=0.0,
    )
    _feed(link)
    link.pump()  # MES down: everything stays spooled
    assert link.pending() == 6 and link.stats.failures == 1
    mes.up = True
    assert link.drain(timeout=5)
    assert link.pending() == 0
    assert link.stats.produced == 6 and link.stats.accepted == 6
    assert link.stats.replayed == 2  # the batch tried while the MES was down
    counts = [e for e in mes.events if isinstance(e, CountEvent)]
    assert [(c.good, c.scrap, c.job_order, c.material_lot) for c in counts] == [
        (9, 1, "JO-1", "LOT-1"),
        (4, 1, "JO-1", "LOT-1"),
    ]
    states = [e for e in mes.events if isinstance(e, StateChangeEvent)]
    assert states[-1].timestamp == datetime(2026, 1, 5, 6, 0, 30, tzinfo=UTC)
    assert [e.sequence for e in mes.events] == [1, 2, 3, 4, 5, 6]


def test_count_deltas_coalesce_per_period_and_flush_at_a_job_change() -> None:
    mes = _FlakyMes()
    mes.up = True
    link = DirectCollector(
        mes.post, source="twin:test", start=START, characteristics={}, count_period=5.0
    )
    link.on_job(0.0, "F", "JO-1", "W", "", None)
    for i in range(1, 10):  # one unit every second
        link.on_counters(float(i), "F", i, 0, i, None)
    link.on_job(9.5, "F", "JO-2", "W", "", None)  # the rest belongs to JO-1
    link.on_counters(10.0, "F", 10, 1, 10, None)
    assert link.drain(timeout=1)
    counts = [(e.good, e.scrap, e.job_order) for e in mes.events if isinstance(e, CountEvent)]
    assert counts == [(1, 0, "JO-1"), (5, 0, "JO-1"), (3, 0, "JO-1"), (0, 1, "JO-2")]


def _drawn_seconds(out: list[StateInterval]) -> dict[str, float]:
    drawn: dict[str, float] = {}
    for iv in out:
        drawn[iv.state] = drawn.get(iv.state, 0.0) + iv.end - iv.start
    return drawn


def test_state_timeline_draws_every_state_second_of_a_flickering_unit() -> None:
    flicker = []
    for i in range(100):  # 100 s: 0.8 s running, 0.2 s starved, every second
        flicker.append(StateInterval(work_unit="C", state="running", start=i, end=i + 0.8))
        flicker.append(StateInterval(work_unit="C", state="starved", start=i + 0.8, end=i + 1))
    flicker.append(StateInterval(work_unit="C", state="down", start=100, end=200))
    out, step = state_timeline(flicker, 200.0, buckets=20)
    assert step == 10.0
    drawn = _drawn_seconds(out)
    assert abs(drawn["running"] - 80.0) < 1e-9 and abs(drawn["starved"] - 20.0) < 1e-9
    assert drawn["down"] == 100.0
    # A few bars a slice at most, the down time one bar, nothing outside its slice.
    assert len(out) <= 2 * 10 + 1
    assert (out[-1].state, out[-1].start, out[-1].end) == ("down", 100.0, 200.0)
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(out))


def test_state_timeline_drawn_seconds_per_state_equal_the_reconciled_seconds() -> None:
    """Issue 13: 37,774 s running reconciled, 231 s drawn (a float floor, ``t // step``,
    sent the rest of an interval into one slice). Over a day of random states with a slice
    length no float holds exactly, every unit's drawn seconds per state equal the ledger's
    (reconciled) seconds within one slice; by construction they are exact."""
    rng = random.Random(13)
    truth = TruthRecorder()
    states = ["running", "starved", "blocked", "down", "setup"]
    for unit in ("P", "Q"):
        t = 0.0
        while t < 86_000.0:
            truth.on_state(t, unit, rng.choice(states), PackMLState.EXECUTE, "", None)
            t += rng.choice([0.3, 0.7, 1.1, 45.3, 3_777.7, 12_345.6])
    end = 86_400.1
    truth.close(end)
    out, step = state_timeline(truth.intervals, end)
    assert step == end / 1500
    reconciled = truth.records().work_units
    for unit in ("P", "Q"):
        drawn = _drawn_seconds([iv for iv in out if iv.work_unit == unit])
        for state, seconds in reconciled[unit].state_seconds.items():
            assert abs(drawn.get(state, 0.0) - seconds) <= min(step, 1e-3), (unit, state)
        assert set(drawn) == set(reconciled[unit].state_seconds)


def test_state_timeline_keeps_few_slices_per_unit_on_a_large_plant() -> None:
    ivs = [
        StateInterval(work_unit=f"U{u:03d}", state=s, start=i * 100.0, end=(i + 1) * 100.0)
        for u in range(200)
        for i, s in enumerate(["running", "down"] * 50)
    ]
    out, step = state_timeline(ivs, 10_000.0)
    assert step == 100.0  # 100 slices a unit (20,000 in all), not 1,500
    assert len(out) == len(ivs)
