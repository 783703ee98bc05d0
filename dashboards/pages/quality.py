"""Quality: SPC individuals charts per inspection characteristic, with spec and control
limits and the violating points marked by Nelson rule; open holds and nonconformances.

Charts grow point by point: while a chart's limits stay the same, a refresh only appends
the new results to its traces.
"""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, Patch, dcc, html, no_update

from dashboards.figures.common import iso
from dashboards.figures.spc import limits_key, spc_figure, spc_title, spc_trace_points
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
from dashboards.views import HoldView, NonconformanceView, QualityView

PATH = "/quality"
TITLE = "Quality"
PAGE = "quality"
ALL = "__all__"


def layout(ctx: PageContext, query: dict[str, list[str]]) -> html.Div:
    characteristic = query_value(query, "characteristic") or ALL
    return html.Div(
        [
            *live_components(PAGE, ctx.period_ms),
            html.H2(["Quality", html.Span(id="quality-asof", className="asof")]),
            html.Div(
                dcc.Dropdown(
                    id="quality-pick",
                    options=[{"label": "all characteristics", "value": ALL}],
                    value=characteristic,
                    clearable=False,
                    className="ctl",
                ),
                className="controls",
            ),
            html.Div(
                [
                    html.Div(
                        [html.H3("Open holds"), html.Div(id="quality-holds")], className="card"
                    ),
                    html.Div(
                        [html.H3("Nonconformances"), html.Div(id="quality-ncs")], className="card"
                    ),
                ],
                className="row",
            ),
            html.Div(id="quality-charts"),
        ],
        className="page",
    )


def holds_table(holds: tuple[HoldView, ...]) -> Any:
    if not holds:
        return html.P("Nothing on hold.", className="muted")
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in ("What", "Code", "Reason", "Since")])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(
                                "material lot" if h.kind == "lot" else h.kind.replace("_", " ")
                            ),
                            html.Td(
                                dcc.Link(h.code, href=f"/genealogy?lot={h.code}")
                                if h.kind == "lot"
                                else dcc.Link(h.code, href=f"/orders?order={h.code}")
                            ),
                            html.Td(h.reason),
                            html.Td(iso(h.since)[:19] if h.since else "–"),
                        ]
                    )
                    for h in holds
                ]
            ),
        ],
        className="table",
        id="holds-table",
    )


def nonconformance_table(ncs: tuple[NonconformanceView, ...]) -> Any:
    if not ncs:
        return html.P("No nonconformances.", className="muted")
    return html.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th(h)
                        for h in (
                            "#",
                            "Status",
                            "Characteristic",
                            "Lot",
                            "Job order",
                            "Found",
                            "What",
                        )
                    ]
                )
            ),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(n.code),
                            html.Td(n.status),
                            html.Td(n.characteristic or "–"),
                            html.Td(n.lot or "–"),
                            html.Td(n.job_order or "–"),
                            html.Td(iso(n.raised_at)[:19] if n.raised_at else "–"),
                            html.Td(n.description),
                        ]
                    )
                    for n in ncs
                ]
            ),
        ],
        className="table",
        id="nc-table",
    )


def charts_children(view: QualityView) -> list[html.Div]:
    if not view.charts:
        return [
            html.Div(html.P("No measurement results yet.", className="muted"), className="card")
        ]
    return [
        html.Div(
            dcc.Graph(figure=spc_figure(chart), config=GRAPH_CONFIG),
            className="card",
            id={"type": "spc-card", "characteristic": chart.characteristic},
        )
        for chart in view.charts
    ]


def register(app: Dash, ctx: PageContext) -> None:
    @app.callback(
        Output("quality-charts", "children"),
        Output("quality-holds", "children"),
        Output("quality-ncs", "children"),
        Output("quality-pick", "options"),
        Output("quality-asof", "children"),
        *banner_outputs(PAGE),
        cursor_output(PAGE),
        tick_input(PAGE),
        Input("quality-pick", "value"),
        cursor_state(PAGE),
        running=no_pile_up(PAGE),
    )
    def refresh(_tick: int, pick: str, cursor: dict[str, Any] | None) -> tuple[Any, ...]:
        wanted = None if pick == ALL else pick
        try:
            view = ctx.read(lambda source: source.quality(wanted))
            now = ctx.now()
        except SourceError as exc:
            return (no_update,) * 5 + failure_banner(exc) + (no_update,)
        keys = [limits_key(c) for c in view.charts]
        counts = [len(c.points) for c in view.charts]
        new_cursor = {"pick": pick, "keys": keys, "n": counts}
        options: Any = no_update
        if wanted is None:
            options = [{"label": "all characteristics", "value": ALL}] + [
                {"label": c.characteristic, "value": c.characteristic} for c in view.charts
            ]
        clock = iso(now)[11:19]
        asof = f"{sum(counts)} results · {len(view.holds)} on hold · as of {clock} UTC"
        tables = (holds_table(view.holds), nonconformance_table(view.nonconformances))
        same_charts = (
            cursor is not None
            and cursor.get("pick") == pick
            and cursor.get("keys") == keys
            and all(n >= m for n, m in zip(counts, cursor.get("n", []), strict=False))
        )
        if not same_charts or cursor is None or not view.charts:
            return (charts_children(view), *tables, options, asof, *banner_ok(), new_cursor)
        charts = Patch()
        for i, chart in enumerate(view.charts):
            new_points = list(chart.points[cursor["n"][i] :])
            if not new_points:
                continue
            figure = charts[i]["props"]["children"]["props"]["figure"]
            for idx, add in spc_trace_points(new_points).items():
                if add["x"]:
                    for axis in ("x", "y", "text"):
                        figure["data"][idx][axis].extend(add[axis])
            figure["layout"]["title"]["text"] = spc_title(chart)
        return (charts, *tables, options, asof, *banner_ok(), new_cursor)
