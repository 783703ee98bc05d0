"""Reconciliation on plain data: each difference becomes a row and a named mismatch."""

from __future__ import annotations

from typing import cast

import pytest

from twin.scenario.reconcile import (
    LabourHours,
    OperationTimes,
    OrderRecord,
    Records,
    UnitRecord,
    operation_labour,
    reconcile,
)
from twin.scenario.sut import Answer, SutUnavailable, SystemUnderTest
from twin.scenario.witness import ActionWitness


def _truth() -> Records:
    return Records(
        work_units={
            "FILLER": UnitRecord(good=98, scrap=2, state_seconds={"running": 3000.0, "down": 600.0})
        },
        job_orders={
            "JO-1": OrderRecord(
                good=98, scrap=2, lots_consumed={"PREFORM-1": 100.0}, lots_produced={"FG-1": 98.0}
            )
        },
        genealogy={("PREFORM-1", "FG-1")},
    )


def test_identical_records_reconcile_exactly() -> None:
    rec = reconcile(_truth(), _truth())
    assert rec.exact
    assert rec.mismatches == []
    assert all(r.matches and r.difference == 0 for r in rec.rows)
    quantities = {(r.id, r.quantity) for r in rec.rows}
    assert ("FILLER", "seconds down") in quantities
    assert ("JO-1", "lot PREFORM-1 consumed") in quantities
    assert ("PREFORM-1 -> FG-1", "edge") in quantities


def test_count_difference_is_named_with_both_values() -> None:
    mes = _truth()
    mes.work_units["FILLER"].good = 97
    rec = reconcile(_truth(), mes)
    assert not rec.exact
    assert rec.mismatches == ["work_unit FILLER: good: plant 98, MES 97, difference -1"]
    row = next(r for r in rec.rows if r.id == "FILLER" and r.quantity == "good")
    assert (row.twin, row.mes, row.difference, row.matches) == (98, 97, -1, False)


def test_state_durations_match_within_tolerance_only() -> None:
    mes = _truth()
    mes.work_units["FILLER"].state_seconds = {"running": 3000.4, "down": 602.0}
    rec = reconcile(_truth(), mes, duration_tolerance=1.0)
    assert rec.mismatches == [
        "work_unit FILLER: seconds down: plant 600, MES 602, difference +2 (tolerance 1)"
    ]


def test_missing_job_order_lot_and_edge_are_each_named() -> None:
    mes = Records(work_units=_truth().work_units)
    mes.job_orders["JO-2"] = OrderRecord(good=5)
    rec = reconcile(_truth(), mes)
    assert "job_order JO-1: good: plant 98, MES has no record" in rec.mismatches
    assert "job_order JO-1: lot PREFORM-1 consumed: plant 100, MES has no record" in rec.mismatches
    assert "job_order JO-2: good: MES recorded 5 but the plant has no such record" in rec.mismatches
    assert "genealogy PREFORM-1 -> FG-1: edge: plant 1, MES has no record" in rec.mismatches


def test_state_durations_can_be_left_out() -> None:
    mes = _truth()
    mes.work_units["FILLER"].state_seconds = {}
    assert reconcile(_truth(), mes, compare_state_durations=False).exact
    assert not reconcile(_truth(), mes).exact


def test_an_mes_without_counts_per_work_unit_is_not_checked_there_but_still_per_order() -> None:
    mes = Records(job_orders=_truth().job_orders, genealogy=_truth().genealogy)
    mes.per_work_unit = False
    rec = reconcile(_truth(), mes)
    assert rec.exact and not [r for r in rec.rows if r.entity == "work_unit"]
    mes.job_orders["JO-1"] = OrderRecord(good=97, scrap=2, lots_consumed={"PREFORM-1": 100.0})
    assert (
        "job_order JO-1: good: plant 98, MES 97, difference -1"
        in reconcile(_truth(), mes).mismatches
    )


def test_operation_times_on_another_clock_are_named_within_the_tick_they_match() -> None:
    """Issue 13: an operation's start and end as the MES recorded them, against when the
    bench's people did it (plant seconds), within the scenario's tick."""
    twin, mes = _truth(), _truth()
    twin.operation_times = {("JO-1", "FILL"): OperationTimes(300.0, 3600.0)}
    mes.operation_times = {("JO-1", "FILL"): OperationTimes(300.001, 3600.0)}
    assert reconcile(twin, mes, time_tolerance=120.0).exact
    # A MES stamping a compressed wall clock: the 55-minute operation shows as 55 s.
    mes.operation_times = {("JO-1", "FILL"): OperationTimes(300.0, 355.0)}
    rec = reconcile(twin, mes, time_tolerance=120.0)
    assert rec.mismatches == [
        "operation JO-1/FILL: end (plant s): plant 3600, MES 355, difference -3245 (tolerance 120)"
    ]
    # An adapter that cannot read times back compares none (the run report says so).
    mes.operation_times = None
    assert not [r for r in reconcile(twin, mes).rows if r.entity == "operation"]


def test_the_witness_notes_when_actions_were_accepted_and_a_lost_answer_by_its_retry() -> None:
    class Sut:
        def __init__(self) -> None:
            self.answers = [SutUnavailable("MES killed"), Answer(False, "INVALID_TRANSITION")]

        def start_operation(self, *args: object) -> Answer:
            return Answer(True)

        def complete_operation(self, *args: object) -> Answer:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    witness = ActionWitness(cast(SystemUnderTest, Sut()))
    sut = witness.as_sut()
    assert sut.start_operation("JO-1", "FILL", "op", "FILLER", 300.0004).accepted
    with pytest.raises(SutUnavailable):
        sut.complete_operation("JO-1", "FILL", "op", 3600.0, None)
    sut.complete_operation("JO-1", "FILL", "op", 3720.0, None)  # already done: at 3600
    assert witness.operation_times == {("JO-1", "FILL"): OperationTimes(300.0, 3600.0)}


def test_a_timestamp_off_the_plant_timeline_is_counted_per_kind_of_record() -> None:
    twin, mes = _truth(), _truth()
    mes.record_times = {"consumptions": [60.0, 3600.0], "signatures": [29_000_000.0]}
    rec = reconcile(twin, mes, time_tolerance=120.0, timeline_end=7200.0)
    rows = {r.id: r for r in rec.rows if r.entity == "timeline"}
    assert rows["consumptions"].matches and rows["consumptions"].mes == 0
    assert rec.mismatches == [
        "timeline signatures: records off the plant's timeline (of 1): plant 0, MES 1, "
        "difference +1"
    ]


def test_an_mes_keeping_durations_and_labour_per_operation_is_reconciled_on_them() -> None:
    """An MES that keeps how long each operation ran (no start and end times: a Tryton
    work cycle) and books labour with the operation (a timesheet line for its starter)."""
    twin, mes = _truth(), _truth()
    twin.operation_times = {
        ("JO-1", "FILL"): OperationTimes(300.0, 3600.0),
        ("JO-1", "PACK"): OperationTimes(400.0, None),  # never ended: nothing to compare
    }
    mes.operation_seconds = {("JO-1", "FILL"): 3300.0}
    twin.labour = operation_labour(
        twin.operation_times, {("JO-1", "FILL"): "OP-ANNA", ("JO-1", "PACK"): "OP-BO"}
    )
    assert (twin.labour.by_person, twin.labour.by_order) == (
        {"OP-ANNA": 3300.0 / 3600.0},
        {"JO-1": 3300.0 / 3600.0},
    )
    mes.labour = LabourHours(by_person={"OP-ANNA": 0.9166667}, by_order={"JO-1": 0.9166667})
    rec = reconcile(twin, mes, time_tolerance=1.0)
    assert rec.exact, rec.mismatches
    seconds = [r for r in rec.rows if r.quantity == "duration (s)"]
    assert [(r.id, r.twin, r.mes) for r in seconds] == [("JO-1/FILL", 3300.0, 3300.0)]
    mes.operation_seconds = {("JO-1", "FILL"): 55.0}
    mes.labour = LabourHours(by_person={"OP-BO": 0.9166667}, by_order={"JO-1": 0.9166667})
    assert reconcile(twin, mes, time_tolerance=1.0).mismatches == [
        "operation JO-1/FILL: duration (s): plant 3300, MES 55, difference -3245 (tolerance 2)",
        "person OP-ANNA: labour hours: plant 0.916667, MES 0, difference -0.916667 "
        "(tolerance 0.001)",
        "person OP-BO: labour hours: plant 0, MES 0.916667, difference +0.916667 (tolerance 0.001)",
    ]
