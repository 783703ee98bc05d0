"""Scenario report: open a run's ``report.json`` (upload it, or pick one the app was
started with) and show it: verdict, expectations, KPIs, deviations and the MES's answers,
faults, job orders, states and the reconciliation against the twin's ground truth.

Files given at start-up are re-read when they change on disk, so a trainer who starts the
dashboard beside a run sees the report appear when the run ends.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards.figures.report import ReportError, parse_report, report_view
from dashboards.pages.base import PageContext, query_value

PATH = "/report"
TITLE = "Scenario report"
PAGE = "report"

#: Biggest report accepted by upload (a day of a 200-unit plant is a few MB).
MAX_REPORT_BYTES = 50 * 1024 * 1024


def layout(ctx: PageContext, query: dict[str, list[str]]) -> html.Div:
    chosen = query_value(query, "file")
    files = [{"label": str(p), "value": str(i)} for i, p in enumerate(ctx.reports)]
    return html.Div(
        [
            dcc.Interval(id="report-poll", interval=max(2000, ctx.period_ms * 2)),
            dcc.Store(id="report-mtime"),
            html.H2("Scenario report"),
            html.Div(id="report-banner", className="banner hidden", role="alert"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="report-file",
                        options=files,
                        value=chosen
                        if chosen is not None
                        else (files[-1]["value"] if files else None),
                        placeholder="Reports given at start-up",
                        className="ctl",
                        style={"minWidth": "360px", "display": "block" if files else "none"},
                    ),
                    dcc.Upload(
                        id="report-upload",
                        children=html.Div(
                            ["Drop a report.json here, or ", html.A("choose a file")]
                        ),
                        className="upload",
                        max_size=MAX_REPORT_BYTES,
                        accept=".json,application/json",
                    ),
                ],
                className="controls",
            ),
            html.Div(id="report-body"),
        ],
        className="page",
    )


def decode_upload(contents: str) -> bytes:
    """The bytes of a ``dcc.Upload`` data URL (``data:...;base64,...``)."""
    _, _, encoded = contents.partition(",")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReportError(f"the upload is not a readable file ({exc})") from exc


def _error(message: str) -> tuple[Any, str]:
    return [html.B("Cannot show this report: "), message], "banner error"


def register(app: Dash, ctx: PageContext) -> None:
    @app.callback(
        Output("report-body", "children", allow_duplicate=True),
        Output("report-banner", "children", allow_duplicate=True),
        Output("report-banner", "className", allow_duplicate=True),
        Input("report-upload", "contents"),
        State("report-upload", "filename"),
        prevent_initial_call=True,
    )
    def uploaded(contents: str | None, filename: str | None) -> tuple[Any, ...]:
        if not contents:
            return (no_update, no_update, no_update)
        name = filename or "upload"
        try:
            doc = parse_report(decode_upload(contents), name=name)
        except ReportError as exc:
            return (no_update, *_error(str(exc)))
        return (report_view(doc), "", "banner hidden")

    @app.callback(
        Output("report-body", "children"),
        Output("report-banner", "children"),
        Output("report-banner", "className"),
        Output("report-mtime", "data"),
        Input("report-file", "value"),
        Input("report-poll", "n_intervals"),
        State("report-mtime", "data"),
        running=[(Output("report-poll", "disabled"), True, False)],
    )
    def from_file(choice: str | None, _tick: int | None, seen: list[Any] | None) -> tuple[Any, ...]:
        if choice is None or not choice.isdigit() or int(choice) >= len(ctx.reports):
            return (no_update, no_update, no_update, no_update)
        path: Path = ctx.reports[int(choice)]
        try:
            stamp: list[Any] = [choice, path.stat().st_mtime_ns]
        except FileNotFoundError:
            stamp = [choice, "missing"]
            if stamp == seen:
                return (no_update, no_update, no_update, no_update)
            return (
                html.P(f"{path} does not exist yet: it appears here when the run writes it."),
                "",
                "banner hidden",
                stamp,
            )
        # Only a change of the file redraws: an upload shown meanwhile stays.
        if stamp == seen:
            return (no_update, no_update, no_update, no_update)
        try:
            doc = parse_report(path.read_bytes(), name=str(path))
        except ReportError as exc:
            return (no_update, *_error(str(exc)), stamp)
        except OSError as exc:
            return (no_update, *_error(f"{path}: {exc.strerror}"), None)
        return (report_view(doc), "", "banner hidden", stamp)
