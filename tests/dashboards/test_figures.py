"""The pure figure builders: what they draw follows the standards they cite, and every
figure is valid Plotly (loaded into ``go.Figure``, which checks it against the schema)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import pytest

from dashboards.figures.andon import andon_board, board_signatures, tile_signature
from dashboards.figures.common import format_duration, iso, percent
from dashboards.figures.genealogy import genealogy_figure, layer_of_lots
from dashboards.figures.oee import loss_steps, loss_waterfall_figure, oee_factors_figure
from dashboards.figures.orders import due_text, order_timeline_figure, orders_table
from dashboards.figures.spc import (
    OUT_OF_SPEC_TRACE,
    TRACE_OF_RULE,
    VALUES_TRACE,
    spc_figure,
)
from dashboards.figures.timeline import (
    closed_trace,
    gantt_figure,
    gantt_states,
    open_trace,
    throughput_figure,
)
from dashboards.views import (
    GenealogyView,
    JobOrderView,
    LineTiles,
    LotLink,
    LotNode,
    OeeView,
    OperationView,
    PlantView,
    SpcChartData,
    SpcPoint,
    StateBar,
    ThroughputPoint,
    WorkUnitTile,
)

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def valid(figure: dict[str, Any]) -> go.Figure:
    """Plotly accepts the figure (raises on an unknown property or a wrong value)."""
    json.dumps(figure)  # it must also be plain JSON for Dash
    return go.Figure(figure)


def oee_view(**overrides: Any) -> OeeView:
    # An 8 h shift: 7 h 30 planned busy, 30 min setup, 30 min delays, 30 min idle, 6 h run.
    base: dict[str, Any] = {
        "scope": "BTL1",
        "start": T0,
        "end": T0 + timedelta(hours=8),
        "pbt": 7.5 * 3600,
        "apt": 6 * 3600,
        "aust": 0.5 * 3600,
        "adet": 0.5 * 3600,
        "adot": 0.5 * 3600,
        "availability": 0.8,
        "effectiveness": 0.9,
        "quality_ratio": 0.95,
        "oee": 0.8 * 0.9 * 0.95,
        "good": 950,
        "scrap": 50,
    }
    base.update(overrides)
    return OeeView(**base)


def test_loss_waterfall_walks_iso22400_time_model_down_to_oee_times_pbt() -> None:
    """ISO 22400-2 clause 5/6: PBT - AUST - ADET - ADOT = APT; APT x effectiveness x
    quality ratio = PRU x GQ; and PRU x GQ / PBT is the OEE index."""
    oee = oee_view()
    steps = loss_steps(oee)
    running = 0.0
    totals: dict[str, float] = {}
    for label, value, measure in steps:
        if measure == "absolute":
            running = value
        elif measure == "relative":
            running += value
        else:
            totals[label] = running
    assert totals["Actual production time (APT)"] == pytest.approx(6.0)
    good_time = totals["Good production time (PRU×GQ)"]
    assert good_time / 7.5 == pytest.approx(oee.oee)
    valid(loss_waterfall_figure(oee))


def test_undefined_kpi_is_shown_as_no_data_not_zero() -> None:
    """ISO 22400-2: a zero denominator leaves the KPI undefined; the chart says so."""
    oee = oee_view(pbt=0, apt=0, aust=0, adet=0, adot=0, availability=None, oee=None)
    fig = valid(oee_factors_figure(oee))
    bar = fig.data[0]
    assert bar.y[0] is None and bar.text[0] == "no data"
    assert any(a.text == "no data" for a in fig.layout.annotations)
    assert percent(None) == "no data"
    # Without effectiveness the waterfall stops at APT rather than inventing a speed loss.
    assert [s[0] for s in loss_steps(oee_view(effectiveness=None))][-1].startswith("Actual")


def bars() -> list[StateBar]:
    return [
        StateBar("FILLER", "running", T0, T0 + timedelta(minutes=50)),
        StateBar("FILLER", "down", T0 + timedelta(minutes=50), T0 + timedelta(minutes=55), "jam"),
        StateBar(
            "FILLER", "running", T0 + timedelta(minutes=55), T0 + timedelta(hours=1), open=True
        ),
        StateBar("CAPPER", "starved", T0, T0 + timedelta(hours=1), open=True),
    ]


def test_gantt_keeps_finished_and_running_intervals_in_fixed_traces() -> None:
    """Finished intervals go to the state's growing trace, running ones to its open trace,
    so a live refresh can extend one and replace the other by index."""
    states = gantt_states(bars())
    fig = valid(gantt_figure(bars(), ["FILLER", "CAPPER"], start=T0, end=T0 + timedelta(hours=1)))
    running_closed = fig.data[closed_trace(states, "running")]
    running_open = fig.data[open_trace(states, "running")]
    assert list(running_closed.x) == [iso(T0), iso(T0 + timedelta(minutes=50)), None]
    assert list(running_open.y) == ["FILLER", "FILLER", None]
    assert fig.data[closed_trace(states, "down")].text[0].startswith("FILLER: down (jam)")
    assert list(fig.layout.yaxis.categoryarray) == ["CAPPER", "FILLER"]
    # A state the dashboard does not know still gets its own trace, never dropped.
    odd = [StateBar("FILLER", "purging", T0, T0 + timedelta(minutes=1))]
    assert "purging" in gantt_states(odd)
    valid(gantt_figure(odd, ["FILLER"]))


def test_throughput_figure_has_actual_and_plan_traces() -> None:
    points = [ThroughputPoint(T0 + timedelta(hours=h), 100.0 * h, 110.0 * h) for h in range(4)]
    fig = valid(throughput_figure(points))
    assert list(fig.data[0].y) == [0, 100, 200, 300]
    assert list(fig.data[1].y) == [0, 110, 220, 330]


def test_spc_chart_marks_each_violation_by_its_nelson_rule_and_draws_limits() -> None:
    """Nelson rules 1-4 each have their own marker trace; spec and control limits are lines."""
    chart = SpcChartData(
        characteristic="fill_volume",
        unit="ml",
        lsl=995,
        target=1000,
        usl=1010,
        centre=1000,
        ucl=1006,
        lcl=994,
        points=(
            SpcPoint(T0, 1000.5),
            SpcPoint(T0 + timedelta(minutes=1), 1007.0, rules=(1,)),
            SpcPoint(T0 + timedelta(minutes=2), 1012.0, rules=(1, 3), out_of_spec=True),
        ),
    )
    fig = valid(spc_figure(chart))
    assert len(fig.data[VALUES_TRACE].x) == 3
    assert list(fig.data[TRACE_OF_RULE[1]].y) == [1007.0, 1012.0]
    assert list(fig.data[TRACE_OF_RULE[3]].y) == [1012.0]
    assert list(fig.data[TRACE_OF_RULE[2]].y) == []
    assert list(fig.data[OUT_OF_SPEC_TRACE].y) == [1012.0]
    labels = {a.text.split()[0] for a in fig.layout.annotations}
    assert labels == {"CL", "UCL", "LCL", "USL", "LSL", "target"}
    assert "2 rule violations" in fig.layout.title.text


def test_genealogy_puts_inputs_left_and_products_right_at_their_depth() -> None:
    """Backward trace (what went in) at negative depth, forward (where it went) positive."""
    view = GenealogyView(
        root="BULK-1",
        nodes=(LotNode("BULK-1", "JUICE", "consumed"), LotNode("FG-1", "CASE", "available")),
        links=(
            LotLink("CONC-1", "BULK-1"),
            LotLink("WATER-1", "BULK-1"),
            LotLink("SUGAR-1", "CONC-1"),
            LotLink("BULK-1", "FG-1", "JO-1", "2"),
            LotLink("FG-1", "PALLET-1"),
            LotLink("CAP-1", "FG-1"),
        ),
    )
    layer = layer_of_lots(view)
    assert layer == {
        "BULK-1": 0,
        "CONC-1": -1,
        "WATER-1": -1,
        "SUGAR-1": -2,
        "FG-1": 1,
        "PALLET-1": 2,
        "CAP-1": 0,
    }
    fig = valid(genealogy_figure(view))
    assert set(fig.data[1].customdata) == set(layer)
    assert len(fig.layout.annotations) == len(view.links)


def tile(**overrides: Any) -> WorkUnitTile:
    base: dict[str, Any] = {
        "code": "FILLER",
        "name": "Filler",
        "line": "BTL1",
        "state": "running",
        "state_since": T0,
        "job_order": "JO-1",
        "good": 120,
        "scrap": 3,
    }
    base.update(overrides)
    return WorkUnitTile(**base)


def test_tile_signature_changes_only_when_what_the_tile_shows_changes() -> None:
    """Live updates resend a tile only when its text changes: the time in state is shown
    coarsely, so seconds passing inside the same minute change nothing."""
    now = T0 + timedelta(minutes=5, seconds=10)
    same = tile_signature(tile(), now)
    assert tile_signature(tile(), now + timedelta(seconds=20)) == same
    assert tile_signature(tile(), now + timedelta(minutes=1)) != same
    assert tile_signature(tile(good=121), now) != same
    assert tile_signature(tile(state="down", alarm="jam", alarm_severity=800), now) != same


def test_andon_board_has_a_tile_per_work_unit_with_machine_readable_counts() -> None:
    view = PlantView(
        at=T0,
        lines=(
            LineTiles("BTL1", "Bottling", (tile(), tile(code="CAPPER", state="down", alarm="jam"))),
            LineTiles("PCK1", "Packing", (tile(code="CASER", good=7),)),
        ),
    )
    board = andon_board(view)
    assert len(board) == 2
    rendered = json.dumps(
        [section.to_plotly_json() for section in board], default=lambda o: o.to_plotly_json()
    )
    assert '"data-code": "CAPPER"' in rendered and '"data-good": "7"' in rendered
    assert "alarm" in rendered
    assert [len(line) for line in board_signatures(view)] == [2, 1]


def test_format_duration_is_coarse_above_a_minute() -> None:
    assert format_duration(42.7) == "42 s"
    assert format_duration(12 * 60 + 59) == "12 min"
    assert format_duration(3 * 3600 + 5 * 60) == "3 h 05"
    assert format_duration(2 * 86400 + 3 * 3600) == "2 d 3 h"
    assert format_duration(-5) == "0 s"


def order(**overrides: Any) -> JobOrderView:
    base: dict[str, Any] = {
        "code": "JO-1",
        "product": "JUICE",
        "quantity": 100,
        "state": "running",
        "due_at": T0 + timedelta(hours=2),
        "started_at": T0,
        "operations": (
            OperationView(
                1, "Fill", "Filler", "completed", "FILLER", 100, 2, T0, T0 + timedelta(hours=1)
            ),
            OperationView(2, "Cap", "Capper", "running", "CAPPER", 40, 1, T0 + timedelta(hours=1)),
        ),
    }
    base.update(overrides)
    return JobOrderView(**base)


def test_job_order_progress_is_the_last_operations_good_against_the_quantity() -> None:
    jo = order()
    assert jo.good == 40 and jo.scrap == 3 and jo.progress == pytest.approx(0.4)
    assert not jo.is_late(T0 + timedelta(hours=1))
    assert jo.is_late(T0 + timedelta(hours=3))
    assert due_text(jo, T0 + timedelta(hours=3)) == "late by 1 h 00"
    assert not order(state="completed").is_late(T0 + timedelta(hours=3))
    valid(order_timeline_figure(jo, T0 + timedelta(hours=1, minutes=30)))
    table = json.dumps(
        orders_table([jo], T0).to_plotly_json(), default=lambda o: o.to_plotly_json()
    )
    assert "/orders?order=JO-1" in table


def test_report_that_is_not_json_or_not_a_report_is_refused_naming_where() -> None:
    from dashboards.figures.report import ReportError, parse_report

    with pytest.raises(ReportError, match=r"^run\.json: not JSON"):
        parse_report(b"{nope", name="run.json")
    with pytest.raises(ReportError, match="a report is a JSON object"):
        parse_report(b"[1, 2]")
    with pytest.raises(ReportError, match=r"not a scenario report: at (\(top level\)|passed)"):
        parse_report(json.dumps({"scenario": {"name": "x"}, "passed": "yes"}))


def test_report_gantt_leaves_out_sub_pixel_intervals_and_says_so() -> None:
    """A long run's flicker (tens of thousands of intervals) is not drawn interval by
    interval; the chart says how many it left out."""
    from dashboards.figures.report import MAX_GANTT_INTERVALS, states_figure

    states = [{"work_unit": "FILLER", "state": "running", "start": 0.0, "end": 3000.0}]
    t = 3000.0
    for i in range(MAX_GANTT_INTERVALS + 10):
        states.append(
            {
                "work_unit": "CAPPER",
                "state": "blocked" if i % 2 else "running",
                "start": t,
                "end": t + 0.1,
            }
        )
        t += 0.1
    states.append({"work_unit": "CAPPER", "state": "down", "start": t, "end": t + 1200})
    fig = valid(states_figure(states))
    assert f"{MAX_GANTT_INTERVALS + 10:,} intervals shorter than" in fig.layout.title.text
    drawn = sum(len([x for x in trace.x if x is not None]) // 2 for trace in fig.data)
    assert drawn == 2
    assert list(fig.layout.yaxis.categoryarray) == ["CAPPER", "FILLER"]


def test_report_page_shows_the_people_section_of_a_training_run() -> None:
    from dashboards.figures.report import people_view

    people = {
        "caught_means": "caught means ...",
        "trainees": [
            {
                "person": "OP-ANNA",
                "roles": ["operator"],
                "actions": 2,
                "accepted": 1,
                "refused": 1,
                "refusals": {"MATERIAL_NOT_ON_BOM": 1},
            }
        ],
        "actions": [
            {
                "seq": 1,
                "t": 60.0,
                "person": "OP-ANNA",
                "action": "consume_lot",
                "target": "5 of LW-5510 on JO-B/1",
                "accepted": False,
                "rule": "MATERIAL_NOT_ON_BOM",
                "message": "not on the BOM",
            }
        ],
        "deviations": [
            {
                "deviation": "trainer-1-process_drift",
                "injected_by": "trainer",
                "at": 360.0,
                "mes_outcome": "caught out_of_spec",
                "verdict": "caught",
                "caught_by": "QA-EVA",
                "reaction_s": 780.0,
                "detail": "QA-EVA: dispose_scrap NC-000001",
            }
        ],
    }
    text = str(people_view(people))
    for shown in ("MATERIAL_NOT_ON_BOM x1", "trainer-1-process_drift", "QA-EVA", "caught"):
        assert shown in text, shown
