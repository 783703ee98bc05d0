"""ISO 22400-2 KPIs, state history windows and labour over HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from mes_quality_factories import build_cell, running_job
from sqlalchemy.orm import Session

from mes_core.client import MesClient, MesRuleViolation
from mes_core.client.errors import MesClientError
from mes_core.kpi.schemas import BreakIn, CalendarIn, ShiftIn
from mes_core.schemas.masterdata import PersonCreate
from mes_core.schemas.plant_events import CountEvent, EquipmentState, StateChangeEvent

HOUR = 3600.0
DAY_START = datetime(2026, 3, 2, tzinfo=UTC)
DAY_END = datetime(2026, 3, 3, tzinfo=UTC)


def at(h: int, m: int = 0) -> datetime:
    return datetime(2026, 3, 2, h, m, tzinfo=UTC)


def _shift_day(admin: MesClient, code: str, line: str) -> None:
    calendar = CalendarIn(
        shifts=[
            ShiftIn(
                name="early",
                start=time(6),
                end=time(14),
                breaks=[BreakIn(start=time(10), end=time(10, 30))],
            )
        ]
    )
    admin.put_calendar(code, calendar)
    admin.assign_calendar(line, code)


def _plant_day(admin: MesClient, cell_filler: str, job: str, tag: str) -> None:
    """The worked example of test_kpi.py, sent as plant events: 30 min setup, a 30 min
    breakdown, 18 720 units counted (936 scrap) on the filler."""
    key = admin.create_api_key(f"collector-{tag}").api_key
    source = f"opcua:kpi-test/{tag}"
    states = [
        (at(6), EquipmentState.SETUP, "changeover"),
        (at(6, 30), EquipmentState.RUNNING, ""),
        (at(9), EquipmentState.DOWN, "jam at infeed"),
        (at(9, 30), EquipmentState.RUNNING, ""),
        (at(14), EquipmentState.IDLE, "end of shift"),
    ]
    events: list[StateChangeEvent | CountEvent] = [
        StateChangeEvent(
            source=source, sequence=i + 1, work_unit=cell_filler, timestamp=t, state=s, reason=r
        )
        for i, (t, s, r) in enumerate(states)
    ]
    events.append(
        CountEvent(
            source=source,
            sequence=10,
            work_unit=cell_filler,
            timestamp=at(8),
            good=17784,
            scrap=936,
            job_order=job,
        )
    )
    with MesClient(str(admin._http.base_url), api_key=key) as collector:
        collector.ingest(events)


def test_iso22400_work_unit_kpis_over_the_api_match_the_hand_worked_example(
    session: Session, admin: MesClient
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    _shift_day(admin, f"CAL-{cell.tag}", cell.line)
    _plant_day(admin, cell.filler, job.code, cell.tag)
    k = admin.work_unit_kpis(cell.filler, DAY_START, DAY_END)
    assert k.calendar == f"CAL-{cell.tag}"
    assert (k.time.pot, k.time.pdot, k.time.pbt) == (8 * HOUR, 0.5 * HOUR, 7.5 * HOUR)
    assert (k.time.apt, k.time.aust, k.time.adet) == (6.5 * HOUR, 0.5 * HOUR, 0.5 * HOUR)
    assert k.produced_quantity == 18720
    assert k.availability == pytest.approx(6.5 / 7.5)
    # PRU of the fill segment is 0.5 s: 18 720 x 0.5 s = 2.6 h planned in 7 h of running
    # (6.5 h APT and 0.5 h through the break, outside PBT).
    assert k.time.apt_outside_pbt == 0.5 * HOUR
    assert k.effectiveness == pytest.approx(2.6 / 7)
    assert k.quality_ratio == pytest.approx(0.95)
    assert k.oee == pytest.approx(6.5 / 7.5 * 2.6 / 7 * 0.95)
    assert k.scrap_ratio == pytest.approx(0.05)
    assert k.quantity_without_pru == 0


def test_iso22400_line_good_quantity_is_what_leaves_the_line_and_time_is_its_constraints(
    session: Session, admin: MesClient
) -> None:
    """ISO 22400-2:2014 5.1/5.2 and 6: a line is measured as one work unit. GQ = the good
    units of the job order's last operation (the capper: what leaves the line), not the sum
    over its units; SQ = scrap anywhere on the line; time elements and PRU of the
    constraint, the unit with the most planned run time (filler: 18 720 x 0.5 s = 2.6 h,
    capper 17 100 x 0.4 s = 1.9 h): its availability and pace are the line's."""
    cell = build_cell(session)
    job = running_job(session, cell)
    _shift_day(admin, f"CAL-{cell.tag}", cell.line)
    _plant_day(admin, cell.filler, job.code, cell.tag)
    key = admin.create_api_key(f"capper-{cell.tag}").api_key
    capper = [
        StateChangeEvent(
            source=f"opcua:kpi-test/{cell.tag}/cap",
            sequence=1,
            work_unit=cell.capper,
            timestamp=at(6, 30),
            state=EquipmentState.RUNNING,
        ),
        CountEvent(
            source=f"opcua:kpi-test/{cell.tag}/cap",
            sequence=2,
            work_unit=cell.capper,
            timestamp=at(9),
            good=17_000,
            scrap=100,
            job_order=job.code,
        ),
    ]
    with MesClient(str(admin._http.base_url), api_key=key) as collector:
        collector.ingest(capper)
    k = admin.line_kpis(cell.line, DAY_START, DAY_END)
    assert k.work_units == sorted([cell.capper, cell.filler])
    assert k.output_work_units == [cell.capper]
    assert k.constraint_work_unit == cell.filler
    assert k.good_quantity == 17_000  # not 17 784 + 17 000
    assert k.scrap_quantity == 936 + 100
    assert k.produced_quantity == 18_036
    # The filler's time model: PBT 7.5 h, APT 6.5 h.
    assert (k.time.pbt, k.time.apt) == (7.5 * HOUR, 6.5 * HOUR)
    assert k.availability == pytest.approx(6.5 / 7.5)
    # The line's pace is the filler's own: its 18 720 units in its 7 h of running (the
    # break included), not the 18 036 that left the line or were scrapped.
    assert k.effectiveness == pytest.approx(0.5 * 18_720 / (7 * HOUR))
    assert k.quality_ratio == pytest.approx(17_000 / 18_036)
    assert k.oee == pytest.approx(6.5 / 7.5 * 0.5 * 18_720 / (7 * HOUR) * 17_000 / 18_036)
    assert k.planned_run_time == pytest.approx(0.5 * 18_036)  # the line's PQ at its PRU
    assert k.throughput_per_hour == pytest.approx(18_036 / 7.5)


def test_iso22400_line_with_nothing_out_yet_has_zero_good_quantity(
    session: Session, admin: MesClient
) -> None:
    """Units filled but not yet capped have not left the line: GQ 0, quality ratio 0."""
    cell = build_cell(session)
    job = running_job(session, cell)
    _shift_day(admin, f"CAL-{cell.tag}", cell.line)
    _plant_day(admin, cell.filler, job.code, cell.tag)
    k = admin.line_kpis(cell.line, DAY_START, DAY_END)
    assert k.constraint_work_unit == cell.filler
    assert (k.good_quantity, k.scrap_quantity) == (0, 936)
    assert k.quality_ratio == 0.0


def test_iso22400_no_calendar_means_round_the_clock_and_no_production_leaves_ratios_undefined(
    session: Session, admin: MesClient
) -> None:
    cell = build_cell(session)
    k = admin.work_unit_kpis(cell.capper, DAY_START, DAY_END)
    assert k.calendar == "24/7 (default)"
    assert k.time.pbt == 24 * HOUR
    assert k.availability == 0.0
    assert k.quality_ratio is None and k.oee is None and k.first_pass_yield is None


def test_state_history_window_lists_intervals_with_reasons(
    session: Session, admin: MesClient
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    _plant_day(admin, cell.filler, job.code, cell.tag)
    report = admin.work_unit_states(cell.filler, at(8), at(12))
    assert [(i.state, i.reason, i.seconds) for i in report.intervals] == [
        ("running", "", 1 * HOUR),
        ("down", "jam at infeed", 0.5 * HOUR),
        ("running", "", 2.5 * HOUR),
    ]
    assert report.seconds_by_state == {"running": 3.5 * HOUR, "down": 0.5 * HOUR}


def test_kpi_window_and_calendar_input_errors_are_4xx(session: Session, admin: MesClient) -> None:
    cell = build_cell(session)
    with pytest.raises(MesClientError) as backwards:
        admin.work_unit_kpis(cell.filler, DAY_END, DAY_START)
    assert backwards.value.status == 422
    with pytest.raises(MesClientError) as zone:
        admin.put_calendar(f"BAD-{cell.tag}", CalendarIn(timezone="Mars/Olympus"))
    assert zone.value.status == 422 and "Mars/Olympus" in zone.value.message
    with pytest.raises(MesClientError) as line_unit:
        admin.work_unit_kpis(cell.line, DAY_START, DAY_END)
    assert line_unit.value.status == 422
    with pytest.raises(MesClientError) as unknown:
        admin.line_kpis("NO-SUCH-LINE", DAY_START, DAY_END)
    assert unknown.value.status == 404


def test_labour_clock_in_book_and_hours_per_operation(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    with MesClient(mes_url).login(cell.operator, "op-secret-1") as op:
        with pytest.raises(MesClientError) as not_in:
            op.start_labour(job.code, 10)
        assert not_in.value.status == 409 and "must clock in" in not_in.value.message
        op.clock_in()
        booking = op.start_labour(job.code, 10)
        assert booking.ended_at is None
        labour = op.job_order_labour(job.code)
        assert [o.sequence for o in labour.operations] == [10, 20]
        assert cell.operator in labour.operations[0].hours_by_person
        op.clock_out()
        person = op.person_labour(cell.operator)
        assert not person.clocked_in
        assert person.bookings[0].ended_at is not None  # clocking out closed the booking


def test_labour_booking_needs_a_certified_person_rule3(session: Session, admin: MesClient) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    admin.clock_in(cell.qa)
    with pytest.raises(MesRuleViolation) as refused:
        admin.start_labour(job.code, 10, cell.qa)
    assert refused.value.rule == "CERTIFICATION"


def test_operators_book_labour_only_for_themselves(session: Session, mes_url: str) -> None:
    cell = build_cell(session)
    with (
        MesClient(mes_url).login(cell.operator, "op-secret-1") as op,
        pytest.raises(MesClientError) as other,
    ):
        op.clock_in(cell.qa)
    assert other.value.status == 403


def test_labour_is_recorded_at_the_stated_business_time_of_a_backdating_person(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    """A simulated plant's people clock and book on the plant's timeline (occurred_at,
    mes_core.domain.clock); hours are the stated intervals, and clocking out at a stated
    time closes the open booking at that time."""
    cell = build_cell(session)
    job = running_job(session, cell)
    code = f"{cell.operator}-bd"
    admin.create_person(
        PersonCreate.model_validate(
            {
                "code": code,
                "roles": ["operator", "backdate"],
                "password": "bd-secret-1",
                "certifications": [{"skill": "filling", "valid_until": "2030-01-01"}],
            }
        )
    )
    with MesClient(mes_url).login(code, "bd-secret-1") as op:
        assert op.clock_in(occurred_at=at(6)).clock_in == at(6)
        op.start_labour(job.code, 10, occurred_at=at(7))
        with pytest.raises(MesClientError) as before:
            op.stop_labour(job.code, 10, occurred_at=at(6, 30))
        assert before.value.status == 422 and "before" in before.value.message
        op.stop_labour(job.code, 10, occurred_at=at(9, 30))
        op.start_labour(job.code, 10, occurred_at=at(10))
        op.clock_out(occurred_at=at(11))
        person = op.person_labour(code)
    assert person.attendance_hours == pytest.approx(5.0)
    assert person.booked_hours == pytest.approx(3.5)
    assert [(b.started_at, b.ended_at) for b in person.bookings] == [
        (at(10), at(11)),
        (at(7), at(9, 30)),
    ]
    by_person = admin.job_order_labour(job.code).operations[0].hours_by_person
    assert by_person[code] == pytest.approx(3.5)
    with (
        MesClient(mes_url).login(cell.operator, "op-secret-1") as plain,
        pytest.raises(MesClientError) as refused,
    ):
        plain.clock_in(occurred_at=at(6))
    assert refused.value.status == 403
