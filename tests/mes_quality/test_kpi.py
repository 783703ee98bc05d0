"""ISO 22400-2:2014 time elements and KPIs, proved on hand-worked examples."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, time, timedelta

import pytest

from mes_core.kpi import calendar
from mes_core.kpi.calendar import (
    ALWAYS_OFF,
    ROUND_THE_CLOCK,
    CalendarError,
    Shift,
    ShiftCalendar,
    total_seconds,
)
from mes_core.kpi.iso22400 import (
    KpiError,
    ProducedQuantity,
    StateChange,
    TimeElements,
    compute_kpis,
    master_data_errors,
    state_intervals,
    time_elements,
)
from mes_core.schemas.plant_events import EquipmentState as S

DAY = date(2026, 3, 2)  # a Monday
EARLY = Shift(
    name="early",
    start=time(6),
    end=time(14),
    weekdays=frozenset({0}),
    breaks=((time(10), time(10, 30)),),
)
CALENDAR = ShiftCalendar(name="one shift", shifts=(EARLY,))
HOUR = 3600.0


def at(h: int, m: int = 0) -> datetime:
    return datetime(2026, 3, 2, h, m, tzinfo=UTC)


# The worked example: an 8 h shift with a 30 min break; 30 min setup, 30 min breakdown.
HISTORY = [
    StateChange(S.OFFLINE, at(0)),
    StateChange(S.SETUP, at(6), "changeover"),
    StateChange(S.RUNNING, at(6, 30)),
    StateChange(S.DOWN, at(9), "jam"),
    StateChange(S.RUNNING, at(9, 30)),
    StateChange(S.OFFLINE, at(14)),
]


def worked_time_elements() -> TimeElements:
    return time_elements(
        planned_operation=CALENDAR.planned_operation(at(0), at(23, 59)),
        planned_downtime=CALENDAR.planned_downtime(at(0), at(23, 59)),
        states=state_intervals(HISTORY, until=at(23, 59)),
    )


def test_iso22400_time_elements_pot_pdot_pbt_from_shift_calendar() -> None:
    t = worked_time_elements()
    assert t.pot == 8 * HOUR
    assert t.pdot == 0.5 * HOUR
    assert t.pbt == 7.5 * HOUR


def test_iso22400_actual_time_elements_apt_aust_adet_within_planned_busy_time() -> None:
    t = worked_time_elements()
    # Running 06:30-09:00 and 09:30-14:00 less the 10:00-10:30 break: 2.5 h + 4 h.
    assert t.apt == 6.5 * HOUR
    assert t.aust == 0.5 * HOUR
    assert t.adet == 0.5 * HOUR
    assert t.adot == 0
    assert t.aubt == 7.5 * HOUR


def test_iso22400_availability_effectiveness_quality_ratio_and_oee_hand_worked() -> None:
    t = time_elements(
        planned_operation=CALENDAR.planned_operation(at(0), at(23, 59)),
        planned_downtime=CALENDAR.planned_downtime(at(0), at(23, 59)),
        states=state_intervals(HISTORY, until=at(23, 59)),
    )
    # PRU 1 s/unit, PQ 18720 -> planned run time 5.2 h; SQ 936 (5 %), RQ 936.
    k = compute_kpis(t, [ProducedQuantity(good=17784, scrap=936, pru_seconds=1.0, rework=936)])
    assert k.availability == pytest.approx(6.5 / 7.5)  # APT / PBT
    # The unit ran through the 10:00-10:30 break: the 18 720 units took 7 h of running
    # (6.5 h APT + 0.5 h outside PBT), so PRU x PQ / running time = 5.2 / 7.
    assert t.apt_outside_pbt == 0.5 * HOUR
    assert k.effectiveness == pytest.approx(18720 / (7 * HOUR))
    assert k.quality_ratio == pytest.approx(0.95)  # GQ / PQ
    assert k.oee == pytest.approx(6.5 / 7.5 * 5.2 / 7 * 0.95)
    assert k.throughput_per_hour == pytest.approx(18720 / 7.5)  # PQ / AUBT
    assert k.scrap_ratio == pytest.approx(0.05)  # SQ / PQ
    assert k.first_pass_yield == pytest.approx(0.9)  # (PQ - SQ - RQ) / PQ


def test_iso22400_effectiveness_weights_each_product_by_its_own_pru() -> None:
    t = worked_time_elements()
    k = compute_kpis(
        t,
        [
            ProducedQuantity(good=3600, scrap=0, pru_seconds=2.0),  # 2 h planned
            ProducedQuantity(good=1800, scrap=0, pru_seconds=4.0),  # 2 h planned
        ],
    )
    assert k.planned_run_time == 4 * HOUR
    assert k.effectiveness == pytest.approx(4 / 7)  # 7 h of running, the break included


def test_iso22400_no_planned_time_leaves_availability_and_oee_undefined() -> None:
    t = time_elements(
        planned_operation=ALWAYS_OFF.planned_operation(at(0), at(23)),
        planned_downtime=[],
        states=state_intervals(HISTORY, until=at(23)),
    )
    assert t.pbt == 0 and t.apt == 0
    k = compute_kpis(t, [ProducedQuantity(good=10, scrap=0, pru_seconds=1.0)])
    assert k.availability is None
    # Effectiveness is a speed: 10 units in the 7 h of running that made them (all outside
    # any plan) is a figure; only the time-based ratios are undefined.
    assert t.apt_outside_pbt == 7 * HOUR
    assert k.effectiveness == pytest.approx(10 / (7 * HOUR))
    assert k.oee is None
    assert k.quality_ratio == 1.0


def test_iso22400_no_production_leaves_quality_ratio_scrap_ratio_and_fpy_undefined() -> None:
    t = worked_time_elements()
    k = compute_kpis(t, [])
    assert k.availability == pytest.approx(6.5 / 7.5)
    assert k.effectiveness == 0.0  # the unit ran but made nothing: a real zero
    assert k.quality_ratio is None
    assert k.scrap_ratio is None
    assert k.first_pass_yield is None
    assert k.oee is None


def test_iso22400_unknown_state_inside_planned_busy_time_counts_as_down_time() -> None:
    t = time_elements(
        planned_operation=ROUND_THE_CLOCK.planned_operation(at(0), at(12)),
        planned_downtime=[],
        states=state_intervals([StateChange(S.RUNNING, at(6))], until=at(12)),
    )
    assert t.pbt == 12 * HOUR
    assert t.apt == 6 * HOUR
    assert t.adot == 6 * HOUR


def test_iso22400_blocked_and_starved_count_as_delay_idle_as_down_time() -> None:
    history = [
        StateChange(S.BLOCKED, at(6)),
        StateChange(S.STARVED, at(7)),
        StateChange(S.IDLE, at(8)),
        StateChange(S.MAINTENANCE, at(9)),
    ]
    t = time_elements(
        planned_operation=[(at(6), at(10))],
        planned_downtime=[],
        states=state_intervals(history, at(10)),
    )
    assert t.adet == 2 * HOUR
    assert t.adot == 2 * HOUR


def test_negative_quantities_are_refused() -> None:
    with pytest.raises(KpiError, match="good must be >= 0"):
        ProducedQuantity(good=-1, scrap=0, pru_seconds=1.0)


def test_shift_calendar_night_shift_crosses_midnight_and_holidays_plan_nothing() -> None:
    night = Shift(
        name="night",
        start=time(22),
        end=time(6),
        breaks=((time(2), time(2, 30)),),
    )
    calendar = ShiftCalendar(name="nights", shifts=(night,), holidays=frozenset({date(2026, 3, 4)}))
    window = (at(0), datetime(2026, 3, 5, 0, 0, tzinfo=UTC))
    # Mon 00-06 (Sunday's night), Mon 22-Tue 06, Tue 22-Wed 06; Wed is a holiday.
    pot = calendar.planned_operation(*window)
    assert total_seconds(pot) == 6 * HOUR + 8 * HOUR + 8 * HOUR
    pdot = calendar.planned_downtime(*window)
    assert total_seconds(pdot) == 3 * 0.5 * HOUR
    assert total_seconds(calendar.planned_busy(*window)) == 22 * HOUR - 1.5 * HOUR


def test_shift_calendar_uses_local_time_zone() -> None:
    calendar = ShiftCalendar(
        name="berlin",
        timezone="Europe/Berlin",
        shifts=(Shift(name="day", start=time(8), end=time(16)),),
    )
    (start, end), *_ = calendar.planned_operation(at(0), at(23))
    assert (start, end) == (at(7), at(15))  # CET is UTC+1 in March


def test_shift_calendar_refuses_unknown_zone_and_naive_windows() -> None:
    with pytest.raises(CalendarError, match="unknown time zone 'Mars/Olympus'"):
        ShiftCalendar(name="x", timezone="Mars/Olympus")
    with pytest.raises(CalendarError, match="timezone-aware"):
        CALENDAR.planned_operation(datetime(2026, 3, 2), at(5))


def test_state_history_last_state_lasts_until_window_end() -> None:
    intervals = state_intervals(HISTORY, until=at(9, 15))
    assert [(i.state, i.start, i.end) for i in intervals][-1] == (S.DOWN, at(9), at(9, 15))
    assert len(intervals) == 4


def test_state_history_without_any_change_has_no_intervals() -> None:
    assert state_intervals([], until=at(12)) == []


def test_subtract_matches_a_minute_by_minute_count() -> None:
    """``calendar.subtract`` (one sweep) against a brute-force oracle: random intervals
    on a minute grid, overlapping, touching, unsorted, empty."""
    rng = random.Random(22400)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def intervals(n: int) -> list[tuple[datetime, datetime]]:
        out = []
        for _ in range(n):
            a, b = rng.randrange(0, 300), rng.randrange(0, 40)
            out.append((t0 + timedelta(minutes=a), t0 + timedelta(minutes=a + b)))
        return out

    def minutes(ivs: list[tuple[datetime, datetime]]) -> set[int]:
        return {
            m
            for start, end in ivs
            for m in range(
                int((start - t0).total_seconds() // 60), int((end - t0).total_seconds() // 60)
            )
        }

    for _ in range(300):
        a, b = intervals(rng.randrange(0, 12)), intervals(rng.randrange(0, 12))
        got = calendar.subtract(a, b)
        assert minutes(got) == minutes(a) - minutes(b)
        assert all(start < end for start, end in got)
        assert all(x[1] <= y[0] for x, y in itertools.pairwise(got))  # sorted, apart


def test_iso22400_clause6_effectiveness_above_one_is_a_master_data_error() -> None:
    """ISO 22400-2:2014 clause 6: effectiveness = PRU x PQ / APT ranges 0 to 1. Bottling
    shipped a 0.5 s PRU for a capper cycling in 0.43 s: 7 h running at 0.43 s gives
    58 605 units, 8.14 h of standard time in 7 h (116 %)."""
    t = worked_time_elements()
    k = compute_kpis(t, [ProducedQuantity(good=58_605, scrap=0, pru_seconds=0.5)])
    assert k.effectiveness == pytest.approx(1.163, abs=1e-3)
    assert master_data_errors(k) == [
        "master-data error: effectiveness 116.3% is above 100 %: the routing's planned run "
        "time per unit (PRU) is slower than the machine really runs; set the operation "
        "segment's PRU to the machine's ideal cycle"
    ]
    fair = compute_kpis(t, [ProducedQuantity(good=58_605, scrap=0, pru_seconds=0.41)])
    assert fair.effectiveness is not None and fair.effectiveness < 1
    assert master_data_errors(fair) == []


def test_iso22400_running_through_a_planned_break_counts_in_effectiveness_not_availability() -> (
    None
):
    """ISO 22400-2:2014 5.1/5.2: APT lies inside PBT, so availability stays APT / PBT. A
    coating pan that finishes its batch through the 10:00-10:30 break made its units in
    7 h, not 6.5 h: effectiveness (clause 6, PRU x PQ / APT) divides by all 7 h, else the
    break reads as speed (7 h of work in 6.5 h: 107.7 %)."""
    t = worked_time_elements()  # running 06:30-09:00 and 09:30-14:00, through the break
    assert (t.pbt, t.apt, t.apt_outside_pbt) == (7.5 * HOUR, 6.5 * HOUR, 0.5 * HOUR)
    k = compute_kpis(t, [ProducedQuantity(good=14, scrap=0, pru_seconds=30 * 60)])  # 7 h
    assert k.availability == pytest.approx(6.5 / 7.5)
    assert k.effectiveness == pytest.approx(1.0)
    assert master_data_errors(k) == []
