"""``report.html``: a self-contained page (plotly.js inlined, no network) for one run.

Sections: summary, expectations (pass/fail), traceability matrix, KPIs (a factor above
100 % flagged as a master-data error), OEE waterfall per line (ISO 22400-2 losses:
availability, performance, quality), equipment state timeline (Gantt, ground truth), order
progress, deviations, faults, reconciliation.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import plotly.graph_objects as go

from twin.scenario.report import Report
from twin.scenario.traceability import matrix_html

_STATE_COLOURS = {
    "running": "#2e7d32",
    "idle": "#9e9e9e",
    "down": "#c62828",
    "setup": "#f9a825",
    "blocked": "#6a1b9a",
    "starved": "#ef6c00",
    "maintenance": "#1565c0",
    "offline": "#424242",
}

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}.pass{color:#2e7d32;font-weight:bold}.fail{color:#c62828;font-weight:bold}
.verdict{font-size:1.6em}.num{text-align:right;font-variant-numeric:tabular-nums}
tr.mismatch{background:#fdecea}
.mde{border:2px solid #c62828;background:#fdecea;padding:0 1em;margin:1em 0}
"""


def _table(head: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    if not rows:
        return "<p>none</p>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _num(v: float | None, fmt: str = "{:.4g}") -> str:
    return "" if v is None else fmt.format(v)


def _oee_figures(report: Report) -> list[go.Figure]:
    figs = []
    for k in report.kpis:
        if k.scope != "line" or None in (k.availability, k.performance, k.quality):
            continue
        a, p, q = k.availability or 0.0, k.performance or 0.0, k.quality or 0.0
        fig = go.Figure(
            go.Waterfall(
                x=["planned time", "availability loss", "performance loss", "quality loss", "OEE"],
                measure=["absolute", "relative", "relative", "relative", "total"],
                y=[1.0, a - 1.0, a * p - a, a * p * q - a * p, 0],
                text=[
                    "100%",
                    f"{a - 1:.1%}",
                    f"{a * p - a:.1%}",
                    f"{a * p * q - a * p:.1%}",
                    f"{a * p * q:.1%}",
                ],
                connector={"line": {"color": "#999"}},
            )
        )
        fig.update_layout(
            title=f"OEE waterfall, line {k.id} ({k.source})",
            yaxis={"tickformat": ".0%", "range": [0, 1.05]},
            height=320,
            margin={"t": 40, "b": 30},
        )
        figs.append(fig)
    return figs


def _gantt(report: Report) -> go.Figure | None:
    if not report.states:
        return None
    fig = go.Figure()
    for state, colour in _STATE_COLOURS.items():
        ivs = [s for s in report.states if s.state == state]
        if not ivs:
            continue
        fig.add_trace(
            go.Bar(
                name=state,
                orientation="h",
                y=[s.work_unit for s in ivs],
                x=[(s.end - s.start) / 3600 for s in ivs],
                base=[s.start / 3600 for s in ivs],
                marker_color=colour,
            )
        )
    units = sorted({s.work_unit for s in report.states})
    fig.update_layout(
        title="Equipment state timeline (twin ground truth)",
        barmode="overlay",
        xaxis_title="simulated hours",
        height=120 + 28 * len(units),
        margin={"t": 40, "b": 40},
    )
    return fig


def _orders(report: Report) -> go.Figure | None:
    if not report.orders:
        return None
    ids = [o.id for o in report.orders]
    fig = go.Figure(
        [
            go.Bar(name="ordered", x=ids, y=[o.quantity for o in report.orders], opacity=0.35),
            go.Bar(name="good (MES)", x=ids, y=[o.good or 0 for o in report.orders]),
            go.Bar(name="scrap (MES)", x=ids, y=[o.scrap or 0 for o in report.orders]),
        ]
    )
    fig.update_layout(title="Order progress", barmode="group", height=340, margin={"t": 40})
    return fig


def _people(report: Report) -> str:
    """The people section: trainees' actions and the MES's answers, what they caught."""
    people = report.people
    if people is None:
        return ""
    trainees = _table(
        ["trainee", "roles", "actions", "accepted", "refused (by rule)", "caught", "reaction (s)"],
        [
            [
                escape(t.person),
                escape(", ".join(t.roles)),
                str(t.actions),
                str(t.accepted),
                escape(", ".join(f"{r} x{n}" for r, n in sorted(t.refusals.items())) or "0"),
                escape(", ".join(t.caught)),
                ", ".join(f"{r:g}" for r in t.reaction_s),
            ]
            for t in people.trainees
        ],
    )
    catches = _table(
        ["deviation", "by", "at (s)", "MES", "verdict", "caught by", "reaction (s)", "detail"],
        [
            [
                escape(d.deviation),
                d.injected_by,
                f"{d.at:g}",
                escape(d.mes_outcome),
                d.verdict,
                escape(d.caught_by or ""),
                _num(d.reaction_s, "{:g}"),
                escape(d.detail),
            ]
            for d in people.deviations
        ],
    )
    actions = _table(
        ["#", "plant s", "trainee", "action", "target", "MES answer", "message"],
        [
            [
                str(a.seq),
                f"{a.t:g}",
                escape(a.person),
                a.action,
                escape(a.target),
                "accepted"
                if a.accepted
                else f'<span class="fail">{escape(a.rule or "refused")}</span>',
                escape(a.message),
            ]
            for a in people.actions
        ],
        ["" if a.accepted else "mismatch" for a in people.actions],
    )
    commands = ", ".join(f"{c.command} at {c.t:g} s" for c in people.commands) or "none"
    return (
        f"<h2>People: trainees and the trainer</h2><p>{escape(people.caught_means)}</p>"
        f"{trainees}<h3>Deviations: caught or let through</h3>{catches}"
        f"<h3>Trainee actions and the MES's answers</h3>{actions}"
        f"<p>Trainer commands: {escape(commands)}</p>"
    )


def render_html(report: Report) -> str:
    """The whole page as a string (plotly.js inlined once)."""
    figs = [*_oee_figures(report)]
    for f in (_gantt(report), _orders(report)):
        if f is not None:
            figs.append(f)
    plots = []
    for i, fig in enumerate(figs):
        plots.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    css = "pass" if report.verdict == "passed" else "fail"
    verdict = (
        f'<span class="{css}">{(report.verdict or "failed").replace("_", " ").upper()}</span>'
        f" <small>{escape(report.verdict_reason)}</small>"
    )
    summary = _table(
        ["scenario", "seed", "simulated", "wall", "system under test", "database"],
        [
            [
                escape(report.scenario.name),
                str(report.seed),
                f"{report.sim_time_s / 3600:.2f} h",
                f"{report.wall_time_s:.1f} s",
                escape(report.system_under_test),
                escape(report.database),
            ]
        ],
    )
    exp = _table(
        ["expectation", "type", "result", "detail"],
        [
            [
                escape(e.name),
                escape(e.type),
                _expectation_mark(e.status or ("passed" if e.passed else "failed")),
                escape(e.detail),
            ]
            for e in report.expectations
        ],
    )
    ev = report.events
    events = _table(
        ["sent", "ingested", "lost", "duplicated", "replayed", "detail"],
        [
            [
                str(ev.sent),
                str(ev.ingested),
                str(ev.lost),
                str(ev.duplicated),
                str(ev.replayed),
                escape(ev.detail),
            ]
        ],
    )
    kpis = _table(
        [
            "scope",
            "id",
            "source",
            "availability",
            "performance",
            "quality",
            "OEE",
            "units/h",
            "good",
            "scrap",
        ],
        [
            [
                k.scope,
                escape(k.id),
                k.source,
                _num(k.availability),
                _num(k.performance),
                _num(k.quality),
                _num(k.oee),
                _num(k.throughput_per_hour),
                _num(k.good),
                _num(k.scrap),
            ]
            for k in report.kpis
        ],
        ["mismatch" if k.master_data_errors else "" for k in report.kpis],
    )
    bases = "".join(
        f"<li>{k.scope.replace('_', ' ')} {escape(k.id)}: {escape(k.basis)}</li>"
        for k in report.kpis
        if k.basis
    )
    if bases:
        kpis += f"<ul>{bases}</ul>"
    errors = [e for k in report.kpis for e in k.master_data_errors]
    if errors:
        items = "".join(f"<li>{escape(e)}</li>" for e in errors)
        kpis = (
            '<div class="mde"><p class="fail">Master-data errors: these figures are '
            f"impossible, not good results.</p><ul>{items}</ul></div>{kpis}"
        )
    devs = _table(
        ["deviation", "type", "at (s)", "target", "MES answer", "rule", "message"],
        [
            [
                escape(d.name),
                d.type,
                f"{d.at:g}",
                escape(d.target),
                d.outcome,
                escape(d.rule or ""),
                escape(d.message),
            ]
            for d in report.deviations
        ],
    )
    faults = _table(
        ["fault", "at (s)", "until (s)", "target", "detail"],
        [
            [f.type, f"{f.at:g}", _num(f.until, "{:g}"), escape(f.target), escape(f.detail)]
            for f in report.faults
        ],
    )
    rec = report.reconciliation
    mism = "".join(f"<li>{escape(m)}</li>" for m in rec.mismatches) or "<li>none</li>"
    rec_table = _table(
        ["entity", "id", "quantity", "twin", "MES", "difference", "tolerance", "match"],
        [
            [
                r.entity,
                escape(r.id),
                escape(r.quantity),
                _num(r.twin, "{:g}"),
                _num(r.mes, "{:g}"),
                _num(r.difference, "{:+g}"),
                f"{r.tolerance:g}",
                "yes" if r.matches else '<span class="fail">no</span>',
            ]
            for r in rec.rows
        ],
        ["" if r.matches else "mismatch" for r in rec.rows],
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    mirror = ""
    if report.mirror is not None:
        m = report.mirror
        mirror = f"""<h2>Mirror ({escape(m.protocol)}): {escape(m.verdict)}</h2>
<p>{escape(m.path)}: {escape(m.detail)}</p>
""" + _table(
            ["work unit", "counter", "twin", "mirror", "match"],
            [
                [
                    escape(r.work_unit),
                    r.quantity,
                    _num(r.twin, "{:g}"),
                    _num(r.mirror, "{:g}"),
                    {True: "yes", None: "not checked"}.get(
                        r.matches, '<span class="fail">no</span>'
                    ),
                ]
                for r in m.rows
            ],
            ["mismatch" if r.matches is False else "" for r in m.rows],
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>mestwin report: {escape(report.scenario.name)}</title><style>{_CSS}</style></head>
<body>
<h1>Scenario {escape(report.scenario.name)}: <span class="verdict">{verdict}</span></h1>
<p>{escape(report.scenario.description)}</p>
<h2>Summary</h2>{summary}
{f"<ul>{notes}</ul>" if notes else ""}
<h2>Expectations</h2>{exp}
<h2>Traceability: requirement, expectations, evidence, verdict</h2>{matrix_html(report)}
<h2>KPIs (ISO 22400-2)</h2>{kpis}
{"".join(plots)}
<h2>Plant events</h2>{events}
<h2>Deviations injected and the MES's answer</h2>{devs}
<h2>Faults injected</h2>{faults}
{_people(report)}
<h2>Reconciliation ({"exact" if rec.exact else f"{len(rec.mismatches)} mismatches"})</h2>
<ul>{mism}</ul>
{rec_table}
{mirror}
</body></html>
"""


def write_html(report: Report, path: Path) -> None:
    path.write_text(render_html(report), encoding="utf-8")


def _expectation_mark(status: str) -> str:
    """pass, fail or not checked (a not-checked expectation is never shown as passed)."""
    if status == "passed":
        return '<span class="pass">pass</span>'
    return f'<span class="fail">{"not checked" if status == "not_checked" else "fail"}</span>'
