"""Job orders: the list with progress against quantity and due date; ``?order=CODE`` shows
one order's operations, quantities, lots, operators and timeline."""

from __future__ import annotations

import zlib
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards.figures.common import iso, number
from dashboards.figures.orders import (
    due_text,
    operations_table,
    order_timeline_figure,
    orders_table,
    state_badge,
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
from dashboards.views import JobOrderView

PATH = "/orders"
TITLE = "Job orders"
PAGE = "orders"

FILTERS = {
    "active": "active (not closed or aborted)",
    "late": "late",
    "held": "held",
    "all": "all",
}


def layout(ctx: PageContext, query: dict[str, list[str]]) -> html.Div:
    order = query_value(query, "order")
    return html.Div(
        [
            *live_components(PAGE, ctx.period_ms),
            dcc.Store(id="orders-selected", data=order),
            html.H2(["Job orders", html.Span(id="orders-asof", className="asof")]),
            html.Div(
                [
                    dcc.Link("← all job orders", href="/orders"),
                    html.Div(id="order-detail"),
                ],
                className="card",
                style={} if order else {"display": "none"},
            ),
            html.Div(
                [
                    dcc.Dropdown(
                        id="orders-filter",
                        options=[{"label": v, "value": k} for k, v in FILTERS.items()],
                        value="active",
                        clearable=False,
                        className="ctl",
                    ),
                    dcc.Input(
                        id="orders-search",
                        placeholder="search job order or product",
                        debounce=True,
                        type="text",
                    ),
                ],
                className="controls",
                style={"display": "none"} if order else {},
            ),
            html.Div(
                id="orders-list", className="card", style={"display": "none"} if order else {}
            ),
        ],
        className="page",
    )


def filter_orders(
    orders: list[JobOrderView], which: str, search: str | None, now: Any
) -> list[JobOrderView]:
    """Orders matching the filter and the search text (code or product, case-insensitive)."""
    if which == "active":
        orders = [o for o in orders if o.state not in {"closed", "aborted"}]
    elif which == "late":
        orders = [o for o in orders if o.is_late(now)]
    elif which == "held":
        orders = [o for o in orders if o.state == "held"]
    if search:
        needle = search.strip().lower()
        orders = [o for o in orders if needle in o.code.lower() or needle in o.product.lower()]
    return orders


def order_detail(order: JobOrderView, now: Any) -> list[Any]:
    """Header facts, the operations table and the timeline of one job order."""
    facts = [
        ("Product", order.product),
        ("Ordered", number(order.quantity)),
        ("Good", number(order.good)),
        ("Scrap", number(order.scrap)),
        ("Due", iso(order.due_at)[:16] + " UTC" if order.due_at else "–"),
        ("Started", iso(order.started_at)[:16] + " UTC" if order.started_at else "–"),
        ("Ended", iso(order.ended_at)[:16] + " UTC" if order.ended_at else "–"),
    ]
    out: list[Any] = [
        html.H3([f"Job order {order.code} ", state_badge(order.state)], id="order-title"),
        html.Div(
            [
                html.Div(
                    [html.Div(k, className="label"), html.Div(v, className="value")],
                    className="kpi",
                )
                for k, v in facts
            ],
            className="kpis",
        ),
        operations_table(order),
    ]
    if order.output_lots:
        out.append(
            html.P(
                [
                    "Lots produced: ",
                    *[
                        html.Span([dcc.Link(lot, href=f"/genealogy?lot={lot}"), " "])
                        for lot in order.output_lots
                    ],
                ]
            )
        )
    out.append(dcc.Graph(figure=order_timeline_figure(order, now), config=GRAPH_CONFIG))
    return out


def register(app: Dash, ctx: PageContext) -> None:
    @app.callback(
        Output("orders-list", "children"),
        Output("order-detail", "children"),
        Output("orders-asof", "children"),
        *banner_outputs(PAGE),
        cursor_output(PAGE),
        tick_input(PAGE),
        Input("orders-filter", "value"),
        Input("orders-search", "value"),
        State("orders-selected", "data"),
        cursor_state(PAGE),
        running=no_pile_up(PAGE),
    )
    def refresh(
        _tick: int, which: str, search: str | None, selected: str | None, seen: int | None
    ) -> tuple[Any, ...]:
        try:
            now = ctx.now()  # due dates and durations on the plant's clock (issue 13)
            if selected:
                order = ctx.read(lambda source: source.job_order(selected))
                sig = _signature(repr(order), iso(now)[:16])
                return (
                    no_update,
                    no_update if sig == seen else order_detail(order, now),
                    f"as of {iso(now)[11:19]} UTC",
                    *banner_ok(),
                    sig,
                )
            orders = ctx.read(lambda source: source.job_orders())
        except SourceError as exc:
            return (no_update, no_update, no_update, *failure_banner(exc), no_update)
        shown = filter_orders(orders, which, search, now)
        late = sum(1 for o in orders if o.is_late(now))
        asof = f"{len(shown)} shown of {len(orders)} · {late} late · as of {iso(now)[11:19]} UTC"
        # Hundreds of rows: sent again only when something in them reads differently.
        sig = _signature(
            *[
                f"{o.code}|{o.state}|{o.good}|{o.quantity}|{o.scrap}|{due_text(o, now)}"
                for o in shown
            ]
        )
        table = no_update if sig == seen else orders_table(shown, now)
        return (table, no_update, asof, *banner_ok(), sig)


def _signature(*parts: str) -> int:
    return zlib.crc32("\n".join(parts).encode())
