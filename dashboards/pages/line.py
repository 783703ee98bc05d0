"""Line: OEE and its factors (ISO 22400-2) over a chosen window, the loss waterfall,
throughput against plan and the equipment state Gantt.

Windows are anchored to whole hours ("last 8 h" starts at the top of the hour eight hours
ago): within the hour the Gantt and throughput only grow and are extended in place; when
the anchor moves they are drawn afresh once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dash import Dash, Input, Output, Patch, dcc, html, no_update

from dashboards.figures.common import format_duration, iso, number, percent
from dashboards.figures.oee import loss_waterfall_figure, oee_factors_figure
from dashboards.figures.timeline import (
    gantt_figure,
    gantt_segments,
    gantt_states,
    gantt_title,
    throughput_figure,
)
from dashboards.live import (
    banner_ok,
    banner_outputs,
    cursor_output,
    cursor_state,
    live_components,
    no_pile_up,
    tick_input,
)
from dashboards.pages.base import PageContext, failure_banner, query_value
from dashboards.source import SourceError
from dashboards.theme import GRAPH_CONFIG
from dashboards.views import LineView, StateBar

PATH = "/line"
TITLE = "Line"
PAGE = "line"

#: Window choices: label -> hours back from now (anchored at the top of the hour).
WINDOWS: dict[str, int] = {"1h": 1, "8h": 8, "24h": 24}
WINDOW_LABELS = {"1h": "last hour", "8h": "last 8 h (a shift)", "24h": "last 24 h"}
DEFAULT_WINDOW = "8h"


def window_bounds(window: str, now: datetime) -> tuple[datetime, datetime]:
    """``[start, now)`` of a window choice; ``start`` is on a whole hour."""
    hours = WINDOWS.get(window, WINDOWS[DEFAULT_WINDOW])
    top = now.replace(minute=0, second=0, microsecond=0)
    return top - timedelta(hours=hours - 1) if hours > 1 else top, now


def layout(ctx: PageContext, query: dict[str, list[str]]) -> html.Div:
    line = query_value(query, "line")
    window = query_value(query, "window") or DEFAULT_WINDOW
    return html.Div(
        [
            *live_components(PAGE, ctx.period_ms),
            # Fires once when the page appears: fills the line picker.
            dcc.Store(id="line-init", data=line),
            html.H2(["Line", html.Span(id="line-asof", className="asof")]),
            html.Div(
                [
                    dcc.Dropdown(
                        id="line-pick",
                        value=line,
                        placeholder="Pick a line",
                        clearable=False,
                        className="ctl",
                    ),
                    dcc.RadioItems(
                        id="line-clock",
                        options=[
                            {"label": " up to now", "value": "now"},
                            {
                                "label": " up to the plant's latest data (simulated runs)",
                                "value": "data",
                            },
                        ],
                        value="data" if query_value(query, "clock") == "data" else "now",
                        inline=True,
                        inputStyle={"marginLeft": "12px"},
                    ),
                    dcc.Dropdown(
                        id="line-window",
                        options=[{"label": WINDOW_LABELS[k], "value": k} for k in WINDOWS],
                        value=window if window in WINDOWS else DEFAULT_WINDOW,
                        clearable=False,
                        className="ctl",
                    ),
                ],
                className="controls",
            ),
            html.Div(id="line-kpis", className="kpis"),
            html.Div(
                [
                    html.Div(dcc.Graph(id="line-factors", config=GRAPH_CONFIG), className="card"),
                    html.Div(dcc.Graph(id="line-waterfall", config=GRAPH_CONFIG), className="card"),
                ],
                className="row",
            ),
            html.Div(
                [
                    dcc.Graph(id="line-throughput", config=GRAPH_CONFIG),
                    html.Div(id="line-notes", className="muted"),
                ],
                className="card",
            ),
            html.Div(dcc.Graph(id="line-gantt", config=GRAPH_CONFIG), className="card"),
        ],
        className="page",
    )


def _kpi(label: str, value: str, kpi_id: str) -> html.Div:
    return html.Div(
        [html.Div(label, className="label"), html.Div(value, className="value", id=kpi_id)],
        className="kpi",
    )


def kpi_cards(view: LineView) -> list[html.Div]:
    """The line's KPI cards; above them, when the MES finds a factor above 100 %, a
    master-data error (ISO 22400-2 ratios are at most 1: the figures are impossible)."""
    oee = view.oee
    warning = []
    if oee.master_data_errors:
        warning.append(
            html.Div(
                [
                    html.Strong("Master-data error: these figures are impossible. "),
                    html.Ul([html.Li(e) for e in oee.master_data_errors]),
                ],
                className="banner error wide",
                id="line-master-data",
            )
        )
    return [
        *warning,
        _kpi("OEE", percent(oee.oee), "kpi-oee"),
        _kpi("Availability (APT/PBT)", percent(oee.availability), "kpi-availability"),
        _kpi("Effectiveness (PRU×PQ/APT)", percent(oee.effectiveness), "kpi-effectiveness"),
        _kpi("Quality ratio (GQ/PQ)", percent(oee.quality_ratio), "kpi-quality"),
        _kpi("Good", number(oee.good), "kpi-good"),
        _kpi("Scrap", number(oee.scrap), "kpi-scrap"),
        _kpi("Planned busy time", format_duration(oee.pbt), "kpi-pbt"),
    ]


def register(app: Dash, ctx: PageContext) -> None:
    @app.callback(
        Output("line-pick", "options"),
        Output("line-pick", "value"),
        Input("line-init", "data"),
    )
    def fill_lines(current: str | None) -> tuple[Any, Any]:
        try:
            lines = ctx.read(lambda source: source.lines())
        except SourceError:
            # The refresh callback shows the banner; the picker stays empty until then.
            return [], no_update
        options = [{"label": f"{name or code} ({code})", "value": code} for code, name in lines]
        # Always set the value with the options: a dropdown drops a value it has no
        # option for, which the line from the address would be until now.
        if current in {code for code, _ in lines}:
            return options, current
        return options, (lines[0][0] if lines else None)

    @app.callback(
        Output("line-kpis", "children"),
        Output("line-factors", "figure"),
        Output("line-waterfall", "figure"),
        Output("line-throughput", "figure"),
        Output("line-notes", "children"),
        Output("line-gantt", "figure"),
        Output("line-asof", "children"),
        *banner_outputs(PAGE),
        cursor_output(PAGE),
        tick_input(PAGE),
        Input("line-pick", "value"),
        Input("line-window", "value"),
        Input("line-clock", "value"),
        cursor_state(PAGE),
        running=no_pile_up(PAGE),
    )
    def refresh(
        _tick: int, line: str | None, window: str, clock: str, cursor: dict[str, Any] | None
    ) -> tuple[Any, ...]:
        if not line:
            return (no_update,) * 7 + banner_ok() + (no_update,)
        try:
            now = ctx.now()  # the plant's clock (issue 13)
            if clock == "data":
                # A run on a simulated clock: the window ends at its latest state change.
                now = ctx.read(lambda source: source.latest_data(line)) or now
            start, end = window_bounds(window, now)
            view = ctx.read(lambda source: source.line(line, start, end))
        except SourceError as exc:
            return (no_update,) * 7 + failure_banner(exc) + (no_update,)
        states = gantt_states(view.states)
        key = f"{line}|{iso(start)}|{','.join(states)}|{','.join(view.work_units)}"
        closed: dict[str, list[StateBar]] = {}
        for bar in sorted(view.states, key=lambda b: b.start):
            if not bar.open:
                closed.setdefault(bar.work_unit, []).append(bar)
        opened = [b for b in view.states if b.open]
        asof = f"{view.name or view.code}: {iso(start)[:16]} → {iso(end)[11:19]} UTC"
        new_cursor = {"key": key, "closed": {wu: len(bars) for wu, bars in closed.items()}}
        head = (
            kpi_cards(view),
            oee_factors_figure(view.oee),
            loss_waterfall_figure(view.oee),
            # A few dozen points: cheaper to send whole than to diff.
            throughput_figure(view.throughput),
            " ".join(view.notes),
        )
        # Intervals under a pixel of the window are not drawn (a flickering unit has
        # thousands); a pixel is about 1/1500 of the chart's width.
        shortest = (end - start).total_seconds() / 1500
        sent: dict[str, int] = (cursor or {}).get("closed", {})
        if (
            not cursor
            or cursor.get("key") != key
            or any(len(closed.get(wu, [])) < n for wu, n in sent.items())
        ):
            return (
                *head,
                gantt_figure(
                    view.states,
                    view.work_units,
                    start=start,
                    end=end,
                    title=gantt_title(view.states, shortest),
                    min_seconds=shortest,
                ),
                asof,
                *banner_ok(),
                new_cursor,
            )
        # Same line and anchor: finished intervals only grow (per work unit, in time
        # order), so extend by the new ones and replace only the running intervals.
        fresh = [b for wu, bars in closed.items() for b in bars[sent.get(wu, 0) :]]
        gantt = Patch()
        for idx, seg in gantt_segments(fresh, states, shortest).items():
            if idx < len(states) and seg["x"]:
                for axis in ("x", "y", "text"):
                    gantt["data"][idx][axis].extend(seg[axis])
        for idx, seg in gantt_segments(opened, states).items():
            if idx >= len(states):
                for axis in ("x", "y", "text"):
                    gantt["data"][idx][axis] = seg[axis]
        gantt["layout"]["xaxis"]["range"] = [iso(start), iso(end)]
        gantt["layout"]["title"]["text"] = gantt_title(view.states, shortest)
        return (*head, gantt, asof, *banner_ok(), new_cursor)
