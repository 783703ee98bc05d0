"""Job orders: the list with progress against quantity and due date, and one order's detail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dash import dcc, html

from dashboards.figures import Figure
from dashboards.figures.common import format_duration, iso, number
from dashboards.theme import JOB_ORDER_COLOURS, UNKNOWN_STATE_COLOUR, figure_layout, state_colour
from dashboards.views import JobOrderView


def _time(moment: datetime | None) -> str:
    return "–" if moment is None else iso(moment)[:16] + " UTC"


def state_badge(state: str) -> html.Span:
    return html.Span(
        state,
        className="badge",
        style={"backgroundColor": JOB_ORDER_COLOURS.get(state, UNKNOWN_STATE_COLOUR)},
    )


def progress_bar(ratio: float, late: bool) -> html.Div:
    """A bar filled to ``ratio``; red when the order is past its due date."""
    return html.Div(
        html.Div(
            className="progress-fill" + (" late" if late else ""),
            style={"width": f"{ratio * 100:.1f}%"},
        ),
        className="progress",
        title=f"{ratio * 100:.1f} %",
    )


def due_text(order: JobOrderView, now: datetime) -> str:
    """``due in 2 h 05``, ``late by 12 min`` or ``done``."""
    if order.due_at is None:
        return "no due date"
    if order.state in {"completed", "closed"}:
        done = order.ended_at
        if done is not None and done > order.due_at:
            return f"done {format_duration((done - order.due_at).total_seconds())} late"
        return "done on time"
    delta = (order.due_at - now).total_seconds()
    if delta >= 0:
        return f"due in {format_duration(delta)}"
    return f"late by {format_duration(-delta)}"


def orders_table(orders: Sequence[JobOrderView], now: datetime) -> html.Table:
    """One row per job order; the code links to the order's detail."""
    head = html.Thead(
        html.Tr(
            [
                html.Th(h)
                for h in (
                    "Job order",
                    "Product",
                    "State",
                    "Good / ordered",
                    "Progress",
                    "Scrap",
                    "Due",
                    "",
                )
            ]
        )
    )
    rows: list[html.Tr] = []
    for order in orders:
        late = order.is_late(now)
        rows.append(
            html.Tr(
                [
                    html.Td(dcc.Link(order.code, href=f"/orders?order={order.code}")),
                    html.Td(order.product),
                    html.Td(state_badge(order.state)),
                    html.Td(f"{number(order.good)} / {number(order.quantity)}", className="num"),
                    html.Td(progress_bar(order.progress, late)),
                    html.Td(number(order.scrap), className="num"),
                    html.Td(_time(order.due_at)),
                    html.Td(due_text(order, now), className="late" if late else ""),
                ],
                id={"type": "order-row", "code": order.code},
                className="late-row" if late else "",
            )
        )
    return html.Table([head, html.Tbody(rows)], className="table orders")


def operations_table(order: JobOrderView) -> html.Table:
    """The order's operations with quantities, work unit, operators and lots consumed."""
    head = html.Thead(
        html.Tr(
            [
                html.Th(h)
                for h in (
                    "#",
                    "Operation",
                    "Class",
                    "State",
                    "Work unit",
                    "Good",
                    "Scrap",
                    "Started",
                    "Ended",
                    "Operators",
                    "Lots consumed",
                )
            ]
        )
    )
    rows = [
        html.Tr(
            [
                html.Td(op.sequence),
                html.Td(op.name),
                html.Td(op.equipment_class),
                html.Td(state_badge(op.state)),
                html.Td(op.work_unit or "–"),
                html.Td(number(op.good), className="num"),
                html.Td(number(op.scrap), className="num"),
                html.Td(_time(op.started_at)),
                html.Td(_time(op.ended_at)),
                html.Td(", ".join(op.operators) or "–"),
                html.Td(
                    [
                        html.Div([dcc.Link(lot, href=f"/genealogy?lot={lot}"), f" × {number(qty)}"])
                        for lot, qty in op.consumed
                    ]
                    or "–"
                ),
            ]
        )
        for op in sorted(order.operations, key=lambda o: o.sequence)
    ]
    return html.Table([head, html.Tbody(rows)], className="table operations")


def order_timeline_figure(order: JobOrderView, now: datetime) -> Figure:
    """Each operation as a bar from its start to its end (running ones up to now)."""
    data: list[dict[str, Any]] = []
    ops = sorted(order.operations, key=lambda o: o.sequence)
    labels = [f"{op.sequence} {op.name}" for op in ops]
    for op, label in zip(ops, labels, strict=True):
        if op.started_at is None:
            continue
        end = op.ended_at or now
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [iso(op.started_at), iso(end)],
                "y": [label, label],
                "name": label,
                "line": {
                    "width": 18,
                    "color": state_colour("running") if op.ended_at is None else "#00897b",
                },
                "hovertext": f"{label} on {op.work_unit or '?'}: "
                f"good {number(op.good)}, scrap {number(op.scrap)}",
                "hoverinfo": "text",
                "showlegend": False,
            }
        )
    shapes: list[dict[str, Any]] = []
    if order.due_at is not None:
        shapes.append(
            {
                "type": "line",
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "x0": iso(order.due_at),
                "x1": iso(order.due_at),
                "line": {"color": "#c62828", "dash": "dash"},
            }
        )
    return {
        "data": data,
        "layout": figure_layout(
            title={
                "text": f"Timeline of {order.code}" + (" (red line: due)" if shapes else ""),
                "x": 0.02,
            },
            height=max(200, 80 + 34 * len(labels)),
            shapes=shapes,
            xaxis={"type": "date", "title": {"text": "UTC"}},
            yaxis={
                "type": "category",
                "categoryorder": "array",
                "categoryarray": list(reversed(labels)),
                "automargin": True,
            },
        ),
    }
