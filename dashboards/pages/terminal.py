"""Operator terminal: a person of the plant (logged in at /login) sees their work unit's
queue and acts on it: start and complete an operation, scan (consume) a lot, report good
and scrap counts, clock in and out. Every answer is the MES's own: a refusal shows its rule
and message (``MATERIAL_NOT_ON_BOM``...), as a real terminal would."""

from __future__ import annotations

from typing import Any

from dash import ALL, Dash, Input, Output, State, dcc, html, no_update
from dash import ctx as dash_ctx

from dashboards.acting import Outcome, QueueRow
from dashboards.live import (
    banner_error,
    banner_ok,
    banner_outputs,
    live_components,
    no_pile_up,
    tick_input,
)
from dashboards.pages.base import PageContext, data, query_value

PATH = "/terminal"
TITLE = "Terminal"
PAGE = "terminal"


def layout(ctx: PageContext, query: dict[str, list[str]]) -> html.Div:
    wu = query_value(query, "wu")  # /terminal?wu=BTL1-FILLER: a terminal at that machine
    number: dict[str, Any] = {"type": "number", "min": 0}
    return html.Div(
        [
            *live_components(PAGE, ctx.period_ms),
            html.H2("Operator terminal"),
            html.P(id="terminal-who", className="muted"),
            html.Div(
                [
                    html.Div(
                        [
                            html.Label("My work unit", htmlFor="terminal-wu"),
                            dcc.Dropdown(
                                id="terminal-wu",
                                options=[{"label": wu, "value": wu}] if wu else [],
                                value=wu,
                                clearable=False,
                            ),
                        ],
                        className="ctl",
                    ),
                    html.Div(
                        [
                            html.Label("Operation", htmlFor="terminal-op"),
                            dcc.Dropdown(id="terminal-op", options=[], clearable=False),
                        ],
                        className="ctl wide-ctl",
                    ),
                ],
                className="controls",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.H3("Queue"),
                            html.Div(id="terminal-queue"),
                        ],
                        className="card",
                    ),
                    html.Div(
                        [
                            html.H3("Act"),
                            html.Div(
                                [
                                    html.Button("Start", id="terminal-start", n_clicks=0),
                                    html.Button("Complete", id="terminal-complete", n_clicks=0),
                                    dcc.Input(
                                        id="terminal-output-lot",
                                        type="text",
                                        placeholder="output lot (last operation)",
                                    ),
                                ],
                                className="actrow",
                            ),
                            html.Div(
                                [
                                    dcc.Input(
                                        id="terminal-lot", type="text", placeholder="scan a lot"
                                    ),
                                    dcc.Input(id="terminal-qty", value=1, **number),
                                    html.Button("Scan lot", id="terminal-consume", n_clicks=0),
                                ],
                                className="actrow",
                            ),
                            html.Div(
                                [
                                    dcc.Input(id="terminal-good", value=0, **number),
                                    html.Span("good", className="muted"),
                                    dcc.Input(id="terminal-scrap", value=0, **number),
                                    html.Span("scrap", className="muted"),
                                    html.Button("Report counts", id="terminal-report", n_clicks=0),
                                ],
                                className="actrow",
                            ),
                            html.Div(
                                [
                                    html.Button("Clock in", id="terminal-clock-in", n_clicks=0),
                                    html.Button(
                                        "Clock out",
                                        id="terminal-clock-out",
                                        n_clicks=0,
                                        className="secondary",
                                    ),
                                ],
                                className="actrow",
                            ),
                            html.Div(id="terminal-answer", className="answer", role="status"),
                        ],
                        className="card",
                    ),
                ],
                className="row",
            ),
            html.Div([html.H3("My actions"), html.Div(id="terminal-log")], className="card"),
            dcc.Store(id="terminal-history", data=[]),
            dcc.Store(id="terminal-sig", data=None),
        ],
        className="page",
    )


def answer_view(outcome: Outcome) -> tuple[Any, str]:
    """The MES's answer as the terminal shows it: accepted, or refused with its rule."""
    if outcome.accepted:
        return [html.B("Accepted: "), outcome.message], "answer accepted"
    rule = outcome.rule or (f"HTTP {outcome.status}" if outcome.status else "NO ANSWER")
    message = outcome.message.removeprefix(f"{rule}: ")  # the MES starts with its rule
    return (
        [html.B("Refused "), html.Code(rule, className="rule"), ": ", message],
        "answer refused",
    )


def history_view(history: list[dict[str, Any]]) -> Any:
    if not history:
        return html.P("Nothing yet.", className="muted")
    rows = [
        html.Tr(
            [
                html.Td(h["action"]),
                html.Td(h["target"]),
                html.Td(
                    "accepted" if h["accepted"] else (h.get("rule") or "refused"),
                    className="outcome " + ("accepted-ok" if h["accepted"] else "refused-rule"),
                ),
                html.Td(h["message"]),
            ]
        )
        for h in reversed(history[-30:])
    ]
    head = html.Tr([html.Th(x) for x in ("action", "target", "MES answer", "message")])
    return html.Table([html.Thead(head), html.Tbody(rows)], className="table")


def _queue_table(rows: list[QueueRow]) -> Any:
    if not rows:
        return html.P("No open operation for this work unit.", className="muted")
    head = html.Tr(
        [html.Th(x) for x in ("", "job order", "op", "product", "state", "good", "scrap", "of")]
    )
    body = [
        html.Tr(
            [
                html.Td(
                    html.Button(
                        "Select",
                        id={"type": "terminal-pick", "op": f"{r.job_order}/{r.sequence}"},
                        n_clicks=0,
                        className="secondary pick",
                    )
                ),
                html.Td(r.job_order),
                html.Td(f"{r.sequence} {r.name}"),
                html.Td(r.product),
                html.Td(r.state if r.order_state != "held" else f"{r.state} (order held)"),
                html.Td(f"{r.good:,.0f}", className="num"),
                html.Td(f"{r.scrap:,.0f}", className="num"),
                html.Td(f"{r.quantity:,.0f}", className="num"),
            ],
            **data(op=f"{r.job_order}/{r.sequence}"),
        )
        for r in rows
    ]
    return html.Table([html.Thead(head), html.Tbody(body)], className="table")


def _number(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def register(app: Dash, ctx: PageContext) -> None:
    @app.callback(
        Output("terminal-who", "children"),
        Output("terminal-wu", "options"),
        Output("terminal-wu", "value"),
        Output("terminal-queue", "children"),
        Output("terminal-op", "options"),
        *banner_outputs(PAGE),
        Output("terminal-sig", "data"),
        tick_input(PAGE),
        Input("terminal-wu", "value"),
        Input("terminal-history", "data"),  # after an action: the queue at once
        State("terminal-wu", "options"),
        State("terminal-sig", "data"),
        running=no_pile_up(PAGE),
    )
    def refresh(
        _tick: int, work_unit: str | None, _acted: Any, options: list[Any], sig: str | None
    ) -> tuple[Any, ...]:
        found = ctx.acting()
        if found is None:
            who: Any = [
                "Log in as a person of the plant to act here: ",
                dcc.Link("log in", href="/login"),
            ]
            return (who, [], None, "", [], *banner_ok(), None)
        acting, session = found
        who = f"Logged in as {session.user} ({', '.join(session.roles) or 'no role'})"
        try:
            units = [o["value"] for o in options] if options else acting.work_units()
            unit = work_unit or (units[0] if units else None)
            rows = acting.queue(unit) if unit else []
        except Exception as exc:  # noqa: BLE001 - the MES did not answer: banner, retry
            return (
                who,
                no_update,
                no_update,
                no_update,
                no_update,
                *banner_error(str(exc)),
                no_update,
            )
        ops = [
            {
                "label": f"{r.job_order} / {r.sequence} {r.name} ({r.state})",
                "value": f"{r.job_order}/{r.sequence}",
            }
            for r in rows
        ]
        wu_options = [{"label": u, "value": u} for u in units]
        new_sig = repr((unit, units, rows))
        if new_sig == sig:  # nothing changed: leave the table (and its buttons) alone
            return (who, no_update, no_update, no_update, no_update, *banner_ok(), no_update)
        return (who, wu_options, unit, _queue_table(rows), ops, *banner_ok(), new_sig)

    @app.callback(
        Output("terminal-op", "value"),
        Input({"type": "terminal-pick", "op": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def pick(clicks: list[int]) -> Any:
        """A click on a queue row's Select chooses its operation."""
        picked = dash_ctx.triggered_id
        if not isinstance(picked, dict) or not any(clicks):
            return no_update
        return picked["op"]

    @app.callback(
        Output("terminal-answer", "children"),
        Output("terminal-answer", "className"),
        Output("terminal-history", "data"),
        Output("terminal-log", "children"),
        Input("terminal-start", "n_clicks"),
        Input("terminal-complete", "n_clicks"),
        Input("terminal-consume", "n_clicks"),
        Input("terminal-report", "n_clicks"),
        Input("terminal-clock-in", "n_clicks"),
        Input("terminal-clock-out", "n_clicks"),
        State("terminal-wu", "value"),
        State("terminal-op", "value"),
        State("terminal-lot", "value"),
        State("terminal-qty", "value"),
        State("terminal-good", "value"),
        State("terminal-scrap", "value"),
        State("terminal-output-lot", "value"),
        State("terminal-history", "data"),
        prevent_initial_call=True,
    )
    def act(*args: Any) -> tuple[Any, ...]:
        work_unit, op, lot, qty, good, scrap, output_lot, history = args[6:]
        found = ctx.acting()
        if found is None:
            return ("Log in first (/login).", "answer refused", no_update, no_update)
        acting, session = found
        assert session.user is not None
        button = str(dash_ctx.triggered_id or "")
        if button.startswith("terminal-clock"):
            outcome = acting.clock("in" if button.endswith("in") else "out")
        else:
            if not op:
                return ("Choose an operation first.", "answer refused", no_update, no_update)
            order, _, seq_text = str(op).rpartition("/")
            seq = int(seq_text)
            if button == "terminal-start":
                outcome = acting.start(order, seq, work_unit or "", session.user)
            elif button == "terminal-complete":
                outcome = acting.complete(order, seq, (output_lot or "").strip() or None)
            elif button == "terminal-consume":
                if not lot:
                    return ("Scan a lot first.", "answer refused", no_update, no_update)
                outcome = acting.consume(order, seq, str(lot).strip(), _number(qty, 1.0))
            else:
                outcome = acting.report(order, seq, _number(good), _number(scrap))
        ctx.record(outcome, session)
        history = [*(history or []), outcome.record(session.user, session.roles)]
        children, css = answer_view(outcome)
        return (children, css, history, history_view(history))
