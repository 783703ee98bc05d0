"""The Scenario report page: a run's ``report.json`` shown as a trainer or validator reads it.

The document is checked against the report's published JSON Schema
(``twin/scenario/report.schema.json``, read as data) before anything is drawn, so a wrong
or truncated file gets one clear message naming what is wrong and where.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import jsonschema
from dash import dcc, html

from dashboards.figures import Figure
from dashboards.figures.common import number, percent
from dashboards.figures.timeline import gantt_figure
from dashboards.theme import figure_layout
from dashboards.views import StateBar

#: Rows of the reconciliation table shown at most (mismatches always come first).
MAX_RECONCILIATION_ROWS = 300


class ReportError(ValueError):
    """The file is not a scenario report this page can show (the message says why)."""


def report_schema() -> dict[str, Any] | None:
    """The published schema of report.json, or ``None`` when the scenario package that
    ships it is not installed (then only the parts this page reads are checked)."""
    try:
        text = resources.files("twin.scenario").joinpath("report.schema.json").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None
    schema: dict[str, Any] = json.loads(text)
    return schema


def parse_report(raw: bytes | str, *, name: str = "report.json") -> dict[str, Any]:
    """Decode and validate a report; raise ``ReportError`` naming the file and the place."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{name}: not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ReportError(f"{name}: a report is a JSON object, got {type(doc).__name__}")
    schema = report_schema()
    if schema is not None:
        validator = jsonschema.Draft202012Validator(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(_sampled(doc)))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            raise ReportError(f"{name}: not a scenario report: at {where}: {error.message}")
    else:
        missing = [k for k in ("scenario", "passed", "expectations") if k not in doc]
        if missing:
            raise ReportError(f"{name}: not a scenario report: missing {', '.join(missing)}")
    return doc


#: Items of a long array checked against the schema: its head and its tail. A day's report
#: holds ~10^5 state intervals, which full validation takes seconds over; every item's
#: fields the page reads are still read defensively.
VALIDATED_ITEMS = 1000


def _sampled(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with every long top-level array cut to its first and last items."""
    half = VALIDATED_ITEMS // 2
    return {
        key: value[:half] + value[-half:]
        if isinstance(value, list) and len(value) > VALIDATED_ITEMS
        else value
        for key, value in doc.items()
    }


def _table(headers: list[str], rows: list[list[Any]], class_name: str = "table") -> html.Table:
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in headers])),
            html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows]),
        ],
        className=class_name,
    )


def _verdict(passed: bool) -> html.Span:
    return html.Span(
        "PASSED" if passed else "FAILED",
        className="badge " + ("pass" if passed else "fail"),
    )


def kpi_figure(kpis: list[dict[str, Any]]) -> Figure:
    """Grouped bars of availability, performance, quality and OEE per line (MES figures,
    with the twin's ground truth beside them where the report has both)."""
    lines = [k for k in kpis if k.get("scope") == "line"] or kpis
    factors = [
        ("availability", "#1565c0"),
        ("performance", "#00897b"),
        ("quality", "#6a1b9a"),
        ("oee", "#2e7d32"),
    ]
    data = []
    for factor, colour in factors:
        data.append(
            {
                "type": "bar",
                "name": factor,
                "x": [f"{k['id']} ({k.get('source', '?')})" for k in lines],
                "y": [None if k.get(factor) is None else round(k[factor] * 100, 2) for k in lines],
                "marker": {"color": colour},
                "hovertemplate": factor + " %{y:.1f} %<extra>%{x}</extra>",
            }
        )
    return {
        "data": data,
        "layout": figure_layout(
            title={"text": "KPIs per ISO 22400-2 (%)", "x": 0.02},
            barmode="group",
            yaxis={"range": [0, 105], "title": {"text": "%"}},
            legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        ),
    }


#: Base of the simulated clock on the report's Gantt: hh:mm ticks read as time since start.
_SIM_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


#: Above this many intervals the report's Gantt leaves out those too short to see.
MAX_GANTT_INTERVALS = 5000
#: Shortest interval drawn then, as a share of the run (a pixel of a 1,500 px chart).
MIN_VISIBLE_SHARE = 1 / 1500


def visible_states(states: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The intervals worth drawing, and how many were left out for being sub-pixel."""
    if len(states) <= MAX_GANTT_INTERVALS:
        return states, 0
    span = max(s["end"] for s in states) - min(s["start"] for s in states)
    shortest = span * MIN_VISIBLE_SHARE
    kept = [s for s in states if s["end"] - s["start"] >= shortest]
    return kept, len(states) - len(kept)


def states_figure(states: list[dict[str, Any]]) -> Figure:
    """The run's equipment states on the simulated clock (ticks: time since start).

    A long run has tens of thousands of intervals (blocked/starved flicker): those shorter
    than a pixel are left out, and the title says how many.
    """
    all_units = list(dict.fromkeys(s["work_unit"] for s in states))
    states, dropped = visible_states(states)
    bars = [
        StateBar(
            work_unit=s["work_unit"],
            state=s["state"],
            start=_SIM_EPOCH + timedelta(seconds=s["start"]),
            end=_SIM_EPOCH + timedelta(seconds=s["end"]),
        )
        for s in states
    ]
    title = "Equipment states"
    if dropped:
        title += (
            f" ({dropped:,} intervals shorter than {MIN_VISIBLE_SHARE:.2%} of the run not drawn)"
        )
    fig = gantt_figure(bars, all_units, title=title)
    fig["layout"]["xaxis"].update(
        {"title": {"text": "simulated time since start"}, "tickformat": "%H:%M"}
    )
    return fig


def report_view(doc: dict[str, Any]) -> list[Any]:
    """The report's sections as Dash components, most important first."""
    scenario = doc.get("scenario", {})
    expectations = doc.get("expectations", [])
    failed = [e for e in expectations if not e.get("passed")]
    out: list[Any] = [
        html.Div(
            [
                html.H2(
                    [f"Scenario {scenario.get('name', '?')} ", _verdict(bool(doc.get("passed")))]
                ),
                html.P(scenario.get("description", "")),
                _table(
                    [
                        "Plant",
                        "Seed",
                        "Simulated",
                        "Wall clock",
                        "Speed",
                        "System under test",
                        "Database",
                        "Started",
                    ],
                    [
                        [
                            scenario.get("plant", "?"),
                            doc.get("seed", "?"),
                            f"{number(doc.get('sim_time_s'))} s",
                            f"{number(doc.get('wall_time_s'))} s",
                            str(scenario.get("speed", "?")),
                            doc.get("system_under_test", "?"),
                            doc.get("database", "?"),
                            doc.get("started_at", "?"),
                        ]
                    ],
                ),
            ],
            className="card",
            id="report-summary",
        ),
        html.Div(
            [
                html.H3(
                    f"Expectations: {len(expectations) - len(failed)} of {len(expectations)} passed"
                ),
                _table(
                    ["", "Expectation", "Type", "Detail"],
                    [
                        [
                            _verdict(bool(e.get("passed"))),
                            e.get("name", ""),
                            e.get("type", ""),
                            e.get("detail", ""),
                        ]
                        for e in sorted(expectations, key=lambda e: bool(e.get("passed")))
                    ],
                ),
            ],
            className="card",
            id="report-expectations",
        ),
    ]
    kpis = doc.get("kpis", [])
    if kpis:
        out.append(
            html.Div(
                [
                    dcc.Graph(figure=kpi_figure(kpis), config={"displaylogo": False}),
                    _table(
                        [
                            "Scope",
                            "Id",
                            "Source",
                            "Availability",
                            "Performance",
                            "Quality",
                            "OEE",
                            "Good",
                            "Scrap",
                        ],
                        [
                            [
                                k.get("scope"),
                                k.get("id"),
                                k.get("source"),
                                percent(k.get("availability")),
                                percent(k.get("performance")),
                                percent(k.get("quality")),
                                percent(k.get("oee")),
                                number(k.get("good")),
                                number(k.get("scrap")),
                            ]
                            for k in kpis
                        ],
                    ),
                ],
                className="card",
            )
        )
    events = doc.get("events") or {}
    latency = doc.get("api_latency") or {}
    out.append(
        html.Div(
            [
                html.H3("Plant events and API latency"),
                _table(
                    [
                        "Sent",
                        "Ingested",
                        "Lost",
                        "Duplicated",
                        "Replayed",
                        "API calls",
                        "p50 ms",
                        "p95 ms",
                        "p99 ms",
                    ],
                    [
                        [
                            number(events.get("sent")),
                            number(events.get("ingested")),
                            number(events.get("lost")),
                            number(events.get("duplicated")),
                            number(events.get("replayed")),
                            number(latency.get("count")),
                            number(latency.get("p50_ms")),
                            number(latency.get("p95_ms")),
                            number(latency.get("p99_ms")),
                        ]
                    ],
                ),
                html.P(events.get("detail", "")),
            ],
            className="card",
        )
    )
    deviations = doc.get("deviations", [])
    if deviations:
        out.append(
            html.Div(
                [
                    html.H3("Deviations injected and the MES's answer"),
                    _table(
                        ["At (s)", "Deviation", "Type", "Target", "Outcome", "Rule", "Message"],
                        [
                            [
                                number(d.get("at")),
                                d.get("name"),
                                d.get("type"),
                                d.get("target"),
                                html.Span(
                                    d.get("outcome"), className=f"outcome {d.get('outcome')}"
                                ),
                                d.get("rule") or "–",
                                d.get("message", ""),
                            ]
                            for d in deviations
                        ],
                    ),
                ],
                className="card",
            )
        )
    faults = doc.get("faults", [])
    if faults:
        out.append(
            html.Div(
                [
                    html.H3("Faults injected"),
                    _table(
                        ["At (s)", "Until (s)", "Fault", "Target", "Detail"],
                        [
                            [
                                number(f.get("at")),
                                number(f.get("until")),
                                f.get("type"),
                                f.get("target", ""),
                                f.get("detail", ""),
                            ]
                            for f in faults
                        ],
                    ),
                ],
                className="card",
            )
        )
    orders = doc.get("orders", [])
    if orders:
        out.append(
            html.Div(
                [
                    html.H3("Job orders"),
                    _table(
                        ["Job order", "Product", "Quantity", "Good", "Scrap", "State"],
                        [
                            [
                                o.get("id"),
                                o.get("product"),
                                number(o.get("quantity")),
                                number(o.get("good")),
                                number(o.get("scrap")),
                                o.get("state") or "–",
                            ]
                            for o in orders
                        ],
                    ),
                ],
                className="card",
            )
        )
    states = doc.get("states", [])
    if states:
        out.append(
            html.Div(
                dcc.Graph(figure=states_figure(states), config={"displaylogo": False}),
                className="card",
            )
        )
    recon = doc.get("reconciliation") or {}
    rows = sorted(recon.get("rows", []), key=lambda r: bool(r.get("matches")))
    mismatches = recon.get("mismatches", [])
    out.append(
        html.Div(
            [
                html.H3(
                    [
                        "Reconciliation: MES against the twin's ground truth ",
                        _verdict(bool(recon.get("exact"))),
                    ]
                ),
                html.Ul([html.Li(m) for m in mismatches])
                if mismatches
                else html.P("Every row matches."),
                _table(
                    [
                        "Entity",
                        "Id",
                        "Quantity",
                        "Twin",
                        "MES",
                        "Difference",
                        "Tolerance",
                        "Matches",
                    ],
                    [
                        [
                            r.get("entity"),
                            r.get("id"),
                            r.get("quantity"),
                            number(r.get("twin")),
                            number(r.get("mes")),
                            number(r.get("difference")),
                            number(r.get("tolerance", 0)),
                            "yes" if r.get("matches") else "NO",
                        ]
                        for r in rows[:MAX_RECONCILIATION_ROWS]
                    ],
                ),
                html.P(f"{len(rows) - MAX_RECONCILIATION_ROWS} more rows not shown")
                if len(rows) > MAX_RECONCILIATION_ROWS
                else None,
            ],
            className="card",
            id="report-reconciliation",
        )
    )
    people = doc.get("people")
    if people:
        out.append(people_view(people))
    notes = doc.get("notes", [])
    if notes:
        out.append(
            html.Div(
                [html.H3("Notes"), html.Ul([html.Li(str(n)) for n in notes])], className="card"
            )
        )
    return out


def people_view(people: dict[str, Any]) -> html.Div:
    """The session record of a run with trainees (the report's ``people`` section)."""
    trainees = _table(
        ["Trainee", "Roles", "Actions", "Accepted", "Refused (by rule)", "Caught", "Reaction s"],
        [
            [
                t.get("person", ""),
                ", ".join(t.get("roles", [])),
                number(t.get("actions")),
                number(t.get("accepted")),
                ", ".join(f"{r} x{n}" for r, n in sorted(t.get("refusals", {}).items())) or "0",
                ", ".join(t.get("caught", [])),
                ", ".join(f"{r:g}" for r in t.get("reaction_s", [])),
            ]
            for t in people.get("trainees", [])
        ],
    )
    catches = _table(
        ["Deviation", "By", "At s", "MES", "Verdict", "Caught by", "Reaction s", "Detail"],
        [
            [
                d.get("deviation", ""),
                d.get("injected_by", ""),
                number(d.get("at")),
                d.get("mes_outcome", ""),
                d.get("verdict", ""),
                d.get("caught_by") or "",
                number(d.get("reaction_s")),
                d.get("detail", ""),
            ]
            for d in people.get("deviations", [])
        ],
    )
    actions = _table(
        ["#", "Plant s", "Trainee", "Action", "Target", "MES answer", "Message"],
        [
            [
                a.get("seq"),
                number(a.get("t")),
                a.get("person", ""),
                a.get("action", ""),
                a.get("target", ""),
                "accepted" if a.get("accepted") else (a.get("rule") or "refused"),
                a.get("message", ""),
            ]
            for a in people.get("actions", [])
        ],
    )
    return html.Div(
        [
            html.H3("People: trainees and the trainer"),
            html.P(people.get("caught_means", ""), className="muted"),
            trainees,
            html.H4("Deviations: caught or let through"),
            catches,
            html.H4("Trainee actions and the MES's answers"),
            actions,
        ],
        className="card",
        id="report-people",
    )
