"""The mirror's verdict and its subscriber's rules, without a broker (the run with one is
``test_scenario_runs.py::test_bottling_with_faults_still_reconciles_exactly``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from plant_models.loader import load_plant_model
from plant_models.scenario import SCENARIOS_DIR
from sparkplug_b.payload import DataType, Payload, set_value
from sparkplug_b.topic import BD_SEQ, Topic
from twin.scenario.uns_mirror import UnsMirror
from twin.sparkplug.subscriber import UnsSubscriber


class Held:
    """A subscriber stand-in holding these counters."""

    def __init__(self, values: dict[str, dict[str, Any]]) -> None:
        self._values = values

    def values(self) -> dict[str, dict[str, Any]]:
        return self._values

    def stats(self) -> dict[str, int]:
        return {"messages": 1}


def _counters(p: int, d: int, c: int) -> dict[str, Any]:
    return {"ProdProcessedCount": p, "ProdDefectiveCount": d, "ProdConsumedCount": c}


def test_mirror_verdict_passes_fails_or_cannot_say(tmp_path: Path) -> None:
    model = load_plant_model(SCENARIOS_DIR.parent / "bottling_line.yaml")
    codes = [wu.code for wu in model.all_work_units()]
    twin = {code: (10 + i, i, 11 + i) for i, code in enumerate(codes)}
    mirror = UnsMirror(model, tmp_path)
    held = {code: _counters(*twin[code]) for code in codes}
    mirror.subscriber = Held(held)  # type: ignore[assignment]
    report = mirror.finish(twin, timeout=0)
    assert report.verdict == "passed", report.detail
    assert len(report.rows) == 3 * len(codes)
    assert "had not taken every message" in report.detail  # nothing settled here

    held[codes[0]] = _counters(twin[codes[0]][0] - 1, *twin[codes[0]][1:])
    del held[codes[1]]
    report = mirror.finish(twin, timeout=0)
    assert report.verdict == "failed"
    assert f"{codes[0]} processed: twin 10, mirror 9" in report.detail

    held[codes[0]] = _counters(*twin[codes[0]])
    report = mirror.finish(twin, timeout=0)
    assert report.verdict == "not_checked"
    assert f"{codes[1]} processed (no DBIRTH of it received)" in report.detail
    assert [r.matches for r in report.rows if r.work_unit == codes[1]] == [None] * 3


def _message(
    kind: str, seq: int | None, metrics: list[tuple[str, int, Any]], device: str = ""
) -> Any:
    payload = Payload(timestamp=1000)
    if seq is not None:
        payload.seq = seq
    for name, datatype, value in metrics:
        set_value(payload.metrics.add(name=name), datatype, value)
    topic = Topic("g", kind, "N1", device or None)
    return SimpleNamespace(topic=str(topic), payload=payload.SerializeToString())


def test_subscriber_follows_births_and_seq_and_asks_for_a_rebirth_on_a_gap() -> None:
    sub = UnsSubscriber(("127.0.0.1", 1), "g")  # never connected: its rebirth goes nowhere
    count = [("ProdProcessedCount", DataType.Int32, 5)]
    feed = sub._on_message
    feed(None, None, _message("DDATA", 0, count, "D1"))  # before any birth: not taken
    assert sub.values() == {} and sub.rebirths_requested == 1
    feed(None, None, _message("NBIRTH", 0, [(BD_SEQ, DataType.UInt64, 0)]))
    feed(None, None, _message("DBIRTH", 1, count, "D1"))
    feed(None, None, _message("DDATA", 2, [("ProdProcessedCount", DataType.Int32, 7)], "D1"))
    assert sub.values() == {"D1": {"ProdProcessedCount": 7}}
    assert sub.sessions() == {"N1": (1000, 2, True)}
    feed(None, None, _message("DDATA", 4, [("ProdProcessedCount", DataType.Int32, 9)], "D1"))
    assert sub.values() == {}  # a gap: nothing of that session is trusted until rebirth
    assert sub.stats()["gaps"] == 1
    feed(None, None, _message("NBIRTH", 0, [(BD_SEQ, DataType.UInt64, 0)]))
    feed(None, None, _message("DBIRTH", 1, [("ProdProcessedCount", DataType.Int32, 9)], "D1"))
    assert sub.values() == {"D1": {"ProdProcessedCount": 9}}
    feed(None, None, _message("NDEATH", None, [(BD_SEQ, DataType.UInt64, 0)]))
    assert sub.sessions()["N1"][2] is False
