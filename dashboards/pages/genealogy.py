"""Genealogy: type or pick a material lot and see its trace backward (what went into it)
and forward (where it went) as a graph; click a lot in the graph to re-centre on it."""

from __future__ import annotations

import zlib
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards.figures.common import number
from dashboards.figures.genealogy import genealogy_figure
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
from dashboards.source import NotFound, SourceError
from dashboards.theme import GRAPH_CONFIG
from dashboards.views import GenealogyView

PATH = "/genealogy"
TITLE = "Genealogy"
PAGE = "genealogy"

#: Lots offered in the picker at most (the newest); any other can still be typed.
MAX_PICKER_LOTS = 2000


def layout(ctx: PageContext, query: dict[str, list[str]]) -> html.Div:
    lot = query_value(query, "lot")
    return html.Div(
        [
            *live_components(PAGE, ctx.period_ms * 3),
            html.H2("Genealogy"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="genealogy-lot",
                        options=[{"label": lot, "value": lot}] if lot else [],
                        value=lot,
                        placeholder="Pick or type a material lot",
                        searchable=True,
                        className="ctl",
                        style={"minWidth": "320px"},
                    ),
                    dcc.Input(
                        id="genealogy-typed",
                        placeholder="…or type a lot code and press Enter",
                        type="text",
                        debounce=True,
                    ),
                ],
                className="controls",
            ),
            html.Div(id="genealogy-summary", className="muted"),
            html.Div(
                dcc.Graph(
                    id="genealogy-graph", config=GRAPH_CONFIG, figure={"data": [], "layout": {}}
                ),
                className="card",
            ),
            html.Div(id="genealogy-table", className="card"),
        ],
        className="page",
    )


def lots_table(view: GenealogyView) -> html.Table:
    return html.Table(
        [
            html.Thead(
                html.Tr([html.Th(h) for h in ("From lot", "Into lot", "Job order", "Operation")])
            ),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(link.parent),
                            html.Td(link.child),
                            html.Td(
                                dcc.Link(link.job_order, href=f"/orders?order={link.job_order}")
                                if link.job_order
                                else "–"
                            ),
                            html.Td(link.operation or "–"),
                        ]
                    )
                    for link in view.links
                ]
            ),
        ],
        className="table",
    )


def _signature(view: GenealogyView) -> int:
    text = repr((view.root, sorted(view.nodes, key=lambda n: n.code), sorted(view.links, key=repr)))
    return zlib.crc32(text.encode())


def register(app: Dash, ctx: PageContext) -> None:
    @app.callback(
        Output("genealogy-lot", "options"),
        Input("genealogy-lot", "search_value"),
        State("genealogy-lot", "value"),
    )
    def lot_options(search: str | None, current: str | None) -> Any:
        try:
            lots = ctx.read(lambda source: source.lots())
        except SourceError:
            return no_update
        if search:
            needle = search.lower()
            lots = [lot for lot in lots if needle in lot.lower()]
        shown = lots[:MAX_PICKER_LOTS]
        if current and current not in shown:
            shown.insert(0, current)
        return [{"label": lot, "value": lot} for lot in shown]

    @app.callback(
        Output("genealogy-lot", "value"),
        Input("genealogy-graph", "clickData"),
        Input("genealogy-typed", "value"),
        prevent_initial_call=True,
    )
    def pick(click: dict[str, Any] | None, typed: str | None) -> Any:
        from dash import ctx as callback_ctx

        if callback_ctx.triggered_id == "genealogy-typed":
            return typed.strip() if typed and typed.strip() else no_update
        points = (click or {}).get("points") or []
        code = points[0].get("customdata") if points else None
        return code if isinstance(code, str) else no_update

    @app.callback(
        Output("genealogy-graph", "figure"),
        Output("genealogy-table", "children"),
        Output("genealogy-summary", "children"),
        *banner_outputs(PAGE),
        cursor_output(PAGE),
        tick_input(PAGE),
        Input("genealogy-lot", "value"),
        cursor_state(PAGE),
        running=no_pile_up(PAGE),
    )
    def refresh(_tick: int, lot: str | None, cursor: int | None) -> tuple[Any, ...]:
        if not lot:
            return (
                no_update,
                html.P("Pick a lot to trace.", className="muted"),
                "",
                *banner_ok(),
                None,
            )
        try:
            view = ctx.read(lambda source: source.genealogy(lot))
        except NotFound as exc:
            return (
                {"data": [], "layout": {"title": {"text": f"No lot {lot}"}}},
                html.P(str(exc)),
                "",
                *failure_banner(exc),
                None,
            )
        except SourceError as exc:
            return (no_update, no_update, no_update, *failure_banner(exc), no_update)
        sig = _signature(view)
        if sig == cursor:
            return (no_update, no_update, no_update, *banner_ok(), no_update)
        root = next((n for n in view.nodes if n.code == view.root), None)
        summary = (
            f"Lot {view.root}"
            + (f": {root.material}, {root.status}" if root else "")
            + (f", quantity {number(root.quantity)}" if root and root.quantity is not None else "")
            + f" · {len(view.nodes) - 1} related lots, {len(view.links)} links"
        )
        return (genealogy_figure(view), lots_table(view), summary, *banner_ok(), sig)
