"""Trainer console: steer the scenario run beside the dashboards (pause, resume, change
the speed, end it), inject any fault or deviation the scenario language knows, now, from a
list (the run sends the list: ``twin.scenario.control``), and watch every trainee action
with the MES's answer as it happens. Opened with the trainer's password, which
``mestwin run --dashboard`` prints."""

from __future__ import annotations

import re
from typing import Any

from dash import ALL, Dash, Input, Output, State, dcc, html, no_update
from dash import ctx as dash_ctx

from dashboards.live import (
    banner_error,
    banner_ok,
    banner_outputs,
    live_components,
    no_pile_up,
    tick_input,
)
from dashboards.pages.base import PageContext, data
from dashboards.run_control import RunControlError

PATH = "/trainer"
TITLE = "Trainer"
PAGE = "trainer"

HIDDEN = {"display": "none"}
SHOWN: dict[str, str] = {}


def layout(ctx: PageContext, query: dict[str, list[str]]) -> html.Div:
    if ctx.control is None:
        return html.Div(
            [
                html.H2("Trainer console"),
                html.P(
                    "These dashboards are not beside a scenario run: start one with "
                    "`mestwin run SCENARIO --speed 60 --dashboard` to steer it from here.",
                    className="muted",
                ),
            ],
            className="page",
        )
    trainer = ctx.sessions.is_trainer()
    return html.Div(
        [
            *live_components(PAGE, ctx.period_ms),
            html.H2("Trainer console"),
            html.Div(
                [
                    html.Label("Trainer password", htmlFor="trainer-password"),
                    dcc.Input(id="trainer-password", type="password", n_submit=0),
                    html.Button("Open the console", id="trainer-unlock", n_clicks=0),
                    html.P(id="trainer-unlock-result"),
                ],
                id="trainer-lock",
                className="card login",
                style=HIDDEN if trainer else SHOWN,
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.Div(id="trainer-status", className="status-line"),
                            html.Div(
                                [
                                    html.Button("Pause", id="trainer-pause", n_clicks=0),
                                    html.Button("Resume", id="trainer-resume", n_clicks=0),
                                    dcc.Input(
                                        id="trainer-speed",
                                        type="number",
                                        min=0.1,
                                        placeholder="speed",
                                        className="speed-input",
                                        style={"maxWidth": "180px"},
                                    ),
                                    html.Button("Set speed", id="trainer-set-speed", n_clicks=0),
                                    html.Button(
                                        "End the run",
                                        id="trainer-stop",
                                        n_clicks=0,
                                        className="secondary",
                                    ),
                                ],
                                className="actrow",
                            ),
                        ],
                        className="card",
                    ),
                    html.Div(
                        [
                            html.H3("Inject now"),
                            dcc.RadioItems(
                                id="trainer-inject-type",
                                options=[],
                                inline=True,
                                className="radios",
                            ),
                            html.P(id="trainer-inject-doc", className="muted"),
                            html.Div(id="trainer-inject-fields"),
                            html.Button("Inject now", id="trainer-inject", n_clicks=0),
                        ],
                        className="card",
                    ),
                    html.Div(id="trainer-answer", className="answer", role="status"),
                    html.Div(
                        [html.H3("Session: trainees and injections"), html.Div(id="trainer-feed")],
                        className="card",
                    ),
                    dcc.Store(id="trainer-injectable", data=[]),
                ],
                id="trainer-console",
                style=SHOWN if trainer else HIDDEN,
            ),
        ],
        className="page",
    )


def _field(f: dict[str, Any]) -> Any:
    fid = {"type": "inject-field", "name": f["name"]}
    label = f["name"] + ("" if f["required"] else " (optional)")
    default = f.get("default")
    # Type-ahead over the plant's choices (work units, lots, people...), free text else.
    options = html.Datalist(
        [html.Option(value=c) for c in f["choices"]], id=f"inject-choices-{f['name']}"
    )
    control = dcc.Input(
        id=fid,
        type="text",
        value="" if default is None else str(default),
        list=f"inject-choices-{f['name']}" if f["choices"] else None,
        placeholder=", ".join(f["choices"][:4]) + (" ..." if len(f["choices"]) > 4 else ""),
    )
    return html.Div([html.Label(label), control, options], className="ctl", title=f.get("doc", ""))


def feed_view(feed: list[dict[str, Any]]) -> Any:
    if not feed:
        return html.P("No trainee action or injection yet.", className="muted")
    rows = []
    for item in reversed(feed[-200:]):
        kind = item["kind"]
        if kind == "action":
            answer = "accepted" if item["accepted"] else f"REFUSED {item.get('rule') or ''}"
            cells = [item["person"], f"{item['action']} {item['target']}", answer, item["message"]]
            css = "feed-action" if item["accepted"] else "feed-action refused-row"
        elif kind == "injection":
            cells = ["trainer", f"inject {item['type']} {item['parameters']}", "", item["outcome"]]
            css = "feed-injection"
        else:
            cells = ["trainer", item["command"], "", ""]
            css = "feed-command"
        rows.append(
            html.Tr(
                [html.Td(f"{item['t']:.0f} s"), *[html.Td(c) for c in cells]],
                className=css,
                **data(kind=kind),
            )
        )
    head = html.Tr([html.Th(x) for x in ("plant time", "who", "what", "MES answer", "message")])
    return html.Table([html.Thead(head), html.Tbody(rows)], className="table")


def _status_line(status: dict[str, Any]) -> str:
    state = "ended" if status["ended"] else ("PAUSED" if status["paused"] else "running")
    return (
        f"{status['scenario']}: {state} · plant time {status['t']:.0f} s of {status['end']:.0f} s"
        f" · speed {status['speed']}"
    )


def register(app: Dash, ctx: PageContext) -> None:
    if ctx.control is None:
        return
    control = ctx.control

    @app.callback(
        Output("trainer-lock", "style"),
        Output("trainer-console", "style"),
        Output("trainer-unlock-result", "children"),
        Output("trainer-password", "value"),
        Input("trainer-unlock", "n_clicks"),
        Input("trainer-password", "n_submit"),
        State("trainer-password", "value"),
        prevent_initial_call=True,
    )
    def unlock(_clicks: int, _submit: int, password: str | None) -> tuple[Any, ...]:
        if control.is_trainer_password(password or ""):
            ctx.sessions.mark_trainer()
            return (HIDDEN, SHOWN, "", "")
        return (no_update, no_update, "Refused: that is not the trainer's password.", "")

    @app.callback(
        Output("trainer-status", "children"),
        Output("trainer-feed", "children"),
        Output("trainer-injectable", "data"),
        Output("trainer-inject-type", "options"),
        *banner_outputs(PAGE),
        tick_input(PAGE),
        State("trainer-injectable", "data"),
        running=no_pile_up(PAGE),
    )
    def refresh(_tick: int, injectable: list[Any]) -> tuple[Any, ...]:
        if not ctx.sessions.is_trainer():
            return (no_update, no_update, no_update, no_update, *banner_ok())
        try:
            data = control.record(0)
            fresh = injectable or control.injectable()
        except RunControlError as exc:
            return (no_update, no_update, no_update, no_update, *banner_error(str(exc)))
        options: Any = no_update
        if not injectable:
            options = [{"label": f"{i['type']} ({i['kind']})", "value": i["type"]} for i in fresh]
        return (
            _status_line(data["status"]),
            feed_view(data["feed"]),
            fresh if not injectable else no_update,
            options,
            *banner_ok(),
        )

    @app.callback(
        Output("trainer-inject-fields", "children"),
        Output("trainer-inject-doc", "children"),
        Input("trainer-inject-type", "value"),
        State("trainer-injectable", "data"),
        prevent_initial_call=True,
    )
    def fields(kind: str | None, injectable: list[dict[str, Any]]) -> tuple[Any, ...]:
        item = next((i for i in injectable or [] if i["type"] == kind), None)
        if item is None:
            return ([], "")
        doc = re.sub(r"``(\w+)``", r"'\1'", str(item["doc"]))  # the language's docstring
        return (html.Div([_field(f) for f in item["fields"]], className="controls"), doc)

    @app.callback(
        Output("trainer-answer", "children"),
        Output("trainer-answer", "className"),
        Input("trainer-pause", "n_clicks"),
        Input("trainer-resume", "n_clicks"),
        Input("trainer-set-speed", "n_clicks"),
        Input("trainer-stop", "n_clicks"),
        Input("trainer-inject", "n_clicks"),
        State("trainer-speed", "value"),
        State("trainer-inject-type", "value"),
        State({"type": "inject-field", "name": ALL}, "value"),
        State({"type": "inject-field", "name": ALL}, "id"),
        prevent_initial_call=True,
    )
    def command(*args: Any) -> tuple[Any, ...]:
        speed, kind, values, ids = args[5:]
        if not ctx.sessions.is_trainer():
            return ("Open the console with the trainer's password first.", "answer refused")
        button = str(dash_ctx.triggered_id or "").removeprefix("trainer-")
        try:
            if button == "inject":
                if not kind:
                    return ("Choose what to inject.", "answer refused")
                given = {
                    i["name"]: v for i, v in zip(ids, values, strict=True) if v not in ("", None)
                }
                control.command("inject", type=kind, **given)
                said = f"{kind} queued: it happens at the run's next tick"
            elif button == "set-speed":
                control.command("speed", speed=speed)
                said = f"speed {speed} queued"
            else:
                name = {"pause": "pause", "resume": "resume", "stop": "stop"}[button]
                control.command(name)
                said = f"{name} queued"
        except RunControlError as exc:
            return ([html.B("Refused: "), str(exc)], "answer refused")
        return ([html.B("Done: "), said], "answer accepted")
