"""Supervisor and QA: review open nonconformances with their SPC evidence, sign a
disposition with the electronic signature (the password again, a meaning, a reason) and
see the signature in the record; place and release holds on job orders and lots by hand.
The MES decides who may do what (QA signs; supervisor or QA hold by hand) and says why
when it refuses."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update
from dash import ctx as dash_ctx

from dashboards.figures.common import iso
from dashboards.live import (
    banner_error,
    banner_ok,
    banner_outputs,
    live_components,
    no_pile_up,
    tick_input,
)
from dashboards.pages.base import PageContext, data
from dashboards.pages.terminal import answer_view, history_view
from mes_core.quality.schemas import MeasurementOut, NonconformanceOut, SignatureOut

PATH = "/supervisor"
TITLE = "Supervisor/QA"
PAGE = "supervisor"


def layout(ctx: PageContext, query: dict[str, list[str]]) -> html.Div:
    def choice(id_: str, values: list[str], value: str) -> dcc.RadioItems:
        return dcc.RadioItems(
            id=id_,
            options=[{"label": v, "value": v} for v in values],
            value=value,
            inline=True,
            className="radios",
        )

    return html.Div(
        [
            *live_components(PAGE, ctx.period_ms),
            html.H2("Supervisor and QA"),
            html.P(id="supervisor-who", className="muted"),
            html.Div(
                [html.H3("Open nonconformances"), html.Div(id="supervisor-ncs")], className="card"
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.H3("Review and sign"),
                            html.Label("Nonconformance", htmlFor="supervisor-nc"),
                            dcc.Dropdown(id="supervisor-nc", options=[], clearable=False),
                            html.Div(id="supervisor-evidence"),
                            html.Div(
                                [
                                    html.Div(
                                        [
                                            html.Label("Disposition"),
                                            choice(
                                                "supervisor-decision",
                                                ["release", "rework", "scrap"],
                                                "release",
                                            ),
                                        ],
                                        className="ctl",
                                    ),
                                    html.Div(
                                        [
                                            html.Label("Meaning of the signature"),
                                            choice(
                                                "supervisor-meaning",
                                                ["approval", "review", "responsibility"],
                                                "approval",
                                            ),
                                        ],
                                        className="ctl",
                                    ),
                                ],
                                className="controls",
                            ),
                            dcc.Input(
                                id="supervisor-reason",
                                type="text",
                                placeholder="reason (at least 5 characters)",
                                className="wide-input",
                            ),
                            dcc.Input(
                                id="supervisor-password",
                                type="password",
                                placeholder="your password again (e-signature)",
                                autoComplete="current-password",
                                className="wide-input",
                            ),
                            html.Button("Sign disposition", id="supervisor-sign", n_clicks=0),
                            html.Div(id="supervisor-signature"),
                        ],
                        className="card",
                    ),
                    html.Div(
                        [
                            html.H3("Holds by hand"),
                            dcc.Input(
                                id="supervisor-hold-reason",
                                type="text",
                                placeholder="reason",
                                className="wide-input",
                            ),
                            html.Div(
                                [
                                    dcc.Input(
                                        id="supervisor-order", type="text", placeholder="job order"
                                    ),
                                    html.Button(
                                        "Hold order", id="supervisor-hold-order", n_clicks=0
                                    ),
                                    html.Button(
                                        "Release order",
                                        id="supervisor-release-order",
                                        n_clicks=0,
                                        className="secondary",
                                    ),
                                ],
                                className="actrow",
                            ),
                            html.Div(
                                [
                                    dcc.Input(id="supervisor-lot", type="text", placeholder="lot"),
                                    html.Button("Hold lot", id="supervisor-hold-lot", n_clicks=0),
                                    html.Button(
                                        "Release lot",
                                        id="supervisor-release-lot",
                                        n_clicks=0,
                                        className="secondary",
                                    ),
                                ],
                                className="actrow",
                            ),
                        ],
                        className="card",
                    ),
                ],
                className="row",
            ),
            html.Div(id="supervisor-answer", className="answer", role="status"),
            html.Div([html.H3("My actions"), html.Div(id="supervisor-log")], className="card"),
            dcc.Store(id="supervisor-history", data=[]),
        ],
        className="page",
    )


def _nc_table(ncs: list[NonconformanceOut]) -> Any:
    if not ncs:
        return html.P("No open nonconformance.", className="muted")
    head = html.Tr(
        [html.Th(x) for x in ("number", "source", "what", "holds orders", "holds lots", "opened")]
    )
    body = [
        html.Tr(
            [
                html.Td(nc.number),
                html.Td(nc.source),
                html.Td(nc.description),
                html.Td(", ".join(nc.held_job_orders)),
                html.Td(", ".join(nc.held_lots)),
                html.Td(iso(nc.opened_at)[:19]),
            ],
            **data(nc=nc.number),
        )
        for nc in ncs
    ]
    return html.Table([html.Thead(head), html.Tbody(body)], className="table")


def evidence_view(nc: NonconformanceOut, results: list[MeasurementOut]) -> Any:
    """The nonconformance and its SPC evidence: the characteristic's latest results, each
    judged against the spec limits and the Nelson rules it broke."""
    rows = [
        html.Tr(
            [
                html.Td(iso(m.measured_at)[11:19]),
                html.Td(f"{m.value:.4g} {m.unit}", className="num"),
                html.Td("in spec" if m.in_spec else "OUT OF SPEC"),
                html.Td(", ".join(f"rule {r}" for r in m.spc_rules) or "-"),
                html.Td(m.nonconformance or ""),
            ],
            className="" if m.in_spec and not m.spc_rules else "late-row",
        )
        for m in results
    ]
    head = html.Tr([html.Th(x) for x in ("measured", "value", "spec", "SPC", "NC")])
    return html.Div(
        [
            html.P([html.B(f"{nc.number}: "), nc.description], className="nc-what"),
            html.Table([html.Thead(head), html.Tbody(rows)], className="table")
            if rows
            else html.P("No results recorded for it.", className="muted"),
        ]
    )


def signature_view(sig: SignatureOut) -> Any:
    """The signature as the record shows it (21 CFR 11.50 manifestation, 11.70 binding)."""
    items = [
        ("signed by", f"{sig.printed_name} ({sig.signer})"),
        ("at", iso(sig.signed_at)),
        ("meaning", sig.meaning),
        ("reason", sig.reason),
        ("record", sig.record_ref),
        ("record hash", sig.record_hash),
        ("binding hash", sig.binding_hash),
        ("verified", "yes" if sig.verified else "NO: the record changed since it was signed"),
    ]
    return html.Div(
        [
            html.H4("Signature in the record"),
            html.Pre(sig.manifestation, className="manifestation"),
            html.Table([html.Tr([html.Th(k), html.Td(v)]) for k, v in items], className="table"),
        ],
        className="signature",
        id="supervisor-signed",
    )


def register(app: Dash, ctx: PageContext) -> None:
    @app.callback(
        Output("supervisor-who", "children"),
        Output("supervisor-ncs", "children"),
        Output("supervisor-nc", "options"),
        Output("supervisor-nc", "value"),
        Output("supervisor-evidence", "children"),
        *banner_outputs(PAGE),
        tick_input(PAGE),
        Input("supervisor-nc", "value"),
        Input("supervisor-history", "data"),  # after an action: the list at once
        running=no_pile_up(PAGE),
    )
    def refresh(_tick: int, chosen: str | None, _acted: Any) -> tuple[Any, ...]:
        found = ctx.acting()
        if found is None:
            who: Any = [
                "Log in as a supervisor or QA to act here: ",
                dcc.Link("log in", href="/login"),
            ]
            return (who, "", [], None, "", *banner_ok())
        acting, session = found
        who = f"Logged in as {session.user} ({', '.join(session.roles) or 'no role'})"
        try:
            ncs = acting.open_nonconformances()
            numbers = [nc.number for nc in ncs]
            value = chosen if chosen in numbers else (numbers[0] if numbers else None)
            nc = next((n for n in ncs if n.number == value), None)
            evidence = evidence_view(nc, acting.evidence(nc)) if nc is not None else ""
        except Exception as exc:  # noqa: BLE001 - the MES did not answer: banner, retry
            return (who, no_update, no_update, no_update, no_update, *banner_error(str(exc)))
        options = [{"label": f"{n.number} ({n.source})", "value": n.number} for n in ncs]
        return (who, _nc_table(ncs), options, value, evidence, *banner_ok())

    @app.callback(
        Output("supervisor-answer", "children"),
        Output("supervisor-answer", "className"),
        Output("supervisor-signature", "children"),
        Output("supervisor-password", "value"),
        Output("supervisor-history", "data"),
        Output("supervisor-log", "children"),
        Input("supervisor-sign", "n_clicks"),
        Input("supervisor-hold-order", "n_clicks"),
        Input("supervisor-release-order", "n_clicks"),
        Input("supervisor-hold-lot", "n_clicks"),
        Input("supervisor-release-lot", "n_clicks"),
        State("supervisor-nc", "value"),
        State("supervisor-decision", "value"),
        State("supervisor-meaning", "value"),
        State("supervisor-reason", "value"),
        State("supervisor-password", "value"),
        State("supervisor-hold-reason", "value"),
        State("supervisor-order", "value"),
        State("supervisor-lot", "value"),
        State("supervisor-history", "data"),
        prevent_initial_call=True,
    )
    def act(*args: Any) -> tuple[Any, ...]:
        nc, decision, meaning, reason, password, hold_reason, order, lot, history = args[5:]
        found = ctx.acting()
        if found is None:
            return ("Log in first (/login).", "answer refused", *(no_update,) * 4)
        acting, session = found
        assert session.user is not None
        button = str(dash_ctx.triggered_id or "")
        signature: Any = no_update
        if button == "supervisor-sign":
            if not nc:
                return ("Choose a nonconformance.", "answer refused", *(no_update,) * 4)
            outcome, signed = acting.dispose(
                nc, decision, meaning, (reason or "").strip(), password or ""
            )
            if signed is not None and signed.signature is not None:
                signature = signature_view(signed.signature)
        elif button in ("supervisor-hold-order", "supervisor-release-order"):
            if not order:
                return ("Name a job order.", "answer refused", *(no_update,) * 4)
            release = button == "supervisor-release-order"
            outcome = acting.hold_order(str(order).strip(), hold_reason or "", release)
        else:
            if not lot:
                return ("Name a lot.", "answer refused", *(no_update,) * 4)
            release = button == "supervisor-release-lot"
            outcome = acting.hold_lot(str(lot).strip(), hold_reason or "", release)
        ctx.record(outcome, session)
        history = [*(history or []), outcome.record(session.user, session.roles)]
        children, css = answer_view(outcome)
        return (children, css, signature, "", history, history_view(history))
