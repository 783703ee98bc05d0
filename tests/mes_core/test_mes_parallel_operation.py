"""An operation running on several work units at once (a parallel station, issue 17): the
segment's equipment specification says how many (``max_work_units``, ISA-95 equipment class
and quantity); each work unit is started on its own, with rules 3, 4 and 5 judged for it;
its counts, lots and completion are its own and all credit the one operation. Through the
API on SQLite and PostgreSQL, and the pure rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from mes_core_factories import Plant, plant
from test_mes_api_execution import refuse

from mes_core.client import MesClient, MesValidationError
from mes_core.domain import rules
from mes_core.domain.errors import Rule, RuleViolation
from mes_core.domain.states import OperationState
from mes_core.schemas.execution import OutputLot
from mes_core.schemas.plant_events import CountEvent


def _count(pl: Plant, seq: int, unit: str, good: int, scrap: int, job: str | None) -> CountEvent:
    return CountEvent(
        source=pl.c("src"),
        sequence=seq,
        work_unit=pl.c(unit),
        timestamp=datetime.now(UTC) + timedelta(milliseconds=seq),
        good=good,
        scrap=scrap,
        job_order=job,
    )


def test_operation_on_two_work_units_credits_each_units_counts_and_lots(
    mes_url: str, admin: MesClient
) -> None:
    pl = plant(mes_url, admin, cap_units=2)
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    op.complete_operation(jo, 1)
    op.start_operation(jo, 2, work_unit=pl.c("CAP"))
    started = op.start_operation(jo, 2, work_unit=pl.c("CAP2"))
    cap = started.operations[1]
    assert (cap.state, cap.work_unit) == ("running", pl.c("CAP"))
    assert [u.work_unit for u in cap.work_units] == [pl.c("CAP"), pl.c("CAP2")]

    connector = MesClient(pl.url, api_key=pl.admin.create_api_key(pl.c("conn")).api_key)
    # One unit's counts name the job order, the other's are the operation running there.
    connector.ingest(
        [_count(pl, 1, "CAP", 4, 1, jo), _count(pl, 2, "CAP2", 5, 0, None)],
    )
    op.report_quantities(jo, 2, good=2, work_unit=pl.c("CAP2"))  # by hand at capper 2
    op.consume_lot(jo, 2, pl.c("C1"), 5, work_unit=pl.c("CAP"))
    op.consume_lot(jo, 2, pl.c("C1"), 5, work_unit=pl.c("CAP2"))
    # CAP has done its part; the operation runs on at CAP2 and takes its counts.
    part = op.complete_operation(jo, 2, work_unit=pl.c("CAP"))
    cap = part.operations[1]
    assert cap.state == "running" and part.state == "running"
    assert [(u.work_unit, u.ended_at is not None) for u in cap.work_units] == [
        (pl.c("CAP"), True),
        (pl.c("CAP2"), False),
    ]
    for done_there in (
        lambda: op.consume_lot(jo, 2, pl.c("C1"), 1, work_unit=pl.c("CAP")),
        lambda: op.report_quantities(jo, 2, good=1, work_unit=pl.c("CAP")),
    ):
        refuse(pl, "INVALID_TRANSITION", jo, done_there)
    connector.ingest([_count(pl, 3, "CAP2", 1, 0, None)])
    done = op.complete_operation(
        jo, 2, work_unit=pl.c("CAP2"), output_lot=OutputLot(code=pl.c("OUT"))
    )
    cap = done.operations[1]
    assert (done.state, cap.state, cap.good, cap.scrap) == ("completed", "completed", 12, 1)
    assert [(u.work_unit, u.good, u.scrap) for u in cap.work_units] == [
        (pl.c("CAP"), 4, 1),
        (pl.c("CAP2"), 8, 0),
    ]
    assert sorted((str(c["work_unit"]), c["quantity"]) for c in cap.consumed) == [
        (pl.c("CAP"), 5),
        (pl.c("CAP2"), 5),
    ]
    assert pl.admin.get_lot(pl.c("OUT")).initial_quantity == 12
    back = pl.admin.genealogy(pl.c("OUT"), "backward")
    assert pl.c("C1") in {n.code for n in back.lots}
    # Both cappers' actuals reach ERP: the segment response names each work unit.
    performance = pl.admin.export_performance([jo]).decode()
    assert pl.c("CAP2") in performance and f"{pl.c('CAP')}<" in performance
    # ... and each consumed lot the unit that drew it (a MaterialActualProperty; the
    # document is validated against the B2MML XSD before it leaves the MES).
    assert performance.count("<ID>WorkUnit</ID>") == 2
    kpi = pl.admin.work_unit_kpis(
        pl.c("CAP2"),
        datetime.now(UTC) - timedelta(hours=1),
        datetime.now(UTC) + timedelta(hours=1),
        "operations",
    )
    assert (kpi.good_quantity, kpi.scrap_quantity) == (8, 0)
    # What left the line: the last operation's good units at both of its work units.
    line = pl.admin.line_kpis(
        pl.c("LINE"), datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
    )
    assert (line.good_quantity, sorted(line.output_work_units)) == (10, [pl.c("CAP"), pl.c("CAP2")])
    connector.close()
    pl.close()


def test_one_work_unit_more_than_the_segment_allows_is_refused(
    mes_url: str, admin: MesClient
) -> None:
    pl = plant(mes_url, admin, cap_units=2)
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    op.complete_operation(jo, 1)
    op.start_operation(jo, 2, work_unit=pl.c("CAP"))
    op.start_operation(jo, 2, work_unit=pl.c("CAP2"))
    refuse(pl, "EQUIPMENT_QUANTITY", jo, lambda: op.start_operation(jo, 2, work_unit=pl.c("CAP3")))
    # Started again where it runs: a transition it has made already.
    refuse(pl, "INVALID_TRANSITION", jo, lambda: op.start_operation(jo, 2, work_unit=pl.c("CAP2")))
    # The output lot is named on the last work unit only.
    with pytest.raises(MesValidationError):
        op.complete_operation(jo, 2, work_unit=pl.c("CAP"), output_lot=OutputLot(code="X"))
    refuse(
        pl,
        "INVALID_TRANSITION",
        jo,
        lambda: op.complete_operation(jo, 2, work_unit=pl.c("CAP3")),
    )
    pl.close()


def test_a_single_unit_segment_stays_on_its_one_work_unit(pl: Plant) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    refuse(pl, "EQUIPMENT_QUANTITY", jo, lambda: op.start_operation(jo, 1, work_unit=pl.c("FILL2")))
    refuse(pl, "INVALID_TRANSITION", jo, lambda: op.start_operation(jo, 1))


def test_rules_3_4_5_are_judged_for_each_work_unit_started(mes_url: str, admin: MesClient) -> None:
    pl = plant(mes_url, admin, fill_units=3)
    op, sup = pl.person("op"), pl.person("sup")
    jo = pl.job_order()
    op.start_operation(jo, 1, work_unit=pl.c("FILL"))
    refuse(
        pl,
        "CALIBRATION_DUE",
        pl.c("FILL-UNCAL"),
        lambda: op.start_operation(jo, 1, work_unit=pl.c("FILL-UNCAL")),
    )
    refuse(
        pl,
        "EQUIPMENT_NOT_QUALIFIED",
        pl.c("FILL-UNQUAL"),
        lambda: op.start_operation(jo, 1, work_unit=pl.c("FILL-UNQUAL")),
    )
    refuse(
        pl, "EQUIPMENT_CLASS", pl.c("CAP"), lambda: op.start_operation(jo, 1, work_unit=pl.c("CAP"))
    )
    refuse(
        pl,
        "CERTIFICATION",
        pl.c("expired"),
        lambda: op.start_operation(jo, 1, work_unit=pl.c("FILL2"), operators=[pl.c("expired")]),
    )
    sup.hold_job_order(jo, "suspect bottles")
    refuse(pl, "HELD", jo, lambda: op.start_operation(jo, 1, work_unit=pl.c("FILL2")))
    sup.release_job_order_hold(jo, "bottles fine")
    both = op.start_operation(jo, 1, work_unit=pl.c("FILL2"))
    assert [u.work_unit for u in both.operations[0].work_units] == [pl.c("FILL"), pl.c("FILL2")]
    # The operation completes as a whole (no work unit named): on every unit at once.
    done = op.complete_operation(jo, 1).operations[0]
    assert done.state == "completed" and all(u.ended_at == done.ended_at for u in done.work_units)


def _facts(state: OperationState = OperationState.RUNNING) -> rules.OperationFacts:
    return rules.OperationFacts(sequence=2, name="cap", state=state)


def test_rule_equipment_quantity_counts_the_units_running_now() -> None:
    check = rules.check_another_work_unit
    check("JO", _facts(), work_unit="C2", running_on=["C1"], ended_on=[], max_work_units=2)
    # A unit that has done its part frees its place for another.
    check("JO", _facts(), work_unit="C3", running_on=["C2"], ended_on=["C1"], max_work_units=2)
    for unit, running, ended, rule in (
        ("C3", ["C1", "C2"], [], Rule.EQUIPMENT_QUANTITY),
        ("C2", ["C1"], [], None),
        ("C1", ["C1"], [], Rule.INVALID_TRANSITION),
        ("C1", ["C2"], ["C1"], Rule.INVALID_TRANSITION),
    ):
        if rule is None:
            continue
        with pytest.raises(RuleViolation) as exc:
            check(
                "JO", _facts(), work_unit=unit, running_on=running, ended_on=ended, max_work_units=2
            )
        assert exc.value.rule == rule and "operation:2" in (exc.value.object_ref or "")
    with pytest.raises(RuleViolation, match="allows 1 work unit at once"):
        check("JO", _facts(), work_unit="C2", running_on=["C1"], ended_on=[], max_work_units=1)
