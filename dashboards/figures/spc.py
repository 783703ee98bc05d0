"""SPC individuals chart of one inspection characteristic.

Points in time order, the centre line and 3-sigma control limits (UCL, LCL), the
specification limits (LSL, USL) and target, and every point that violated a Nelson rule
marked with that rule's symbol (rule 1 beyond 3 sigma, 2 nine on one side, 3 six trending,
4 fourteen alternating: L. S. Nelson, J. Quality Technology 16(4), 1984). Points out of
specification are circled in red.

Trace order is fixed so that a live update extends traces by index: 0 the values,
1 out of spec, then one trace per rule 1..4 (see ``TRACE_OF_RULE``).
"""

from __future__ import annotations

from typing import Any

from dashboards.figures import Figure
from dashboards.figures.common import iso
from dashboards.theme import RULE_MARKERS, RULE_TEXT, figure_layout
from dashboards.views import SpcChartData, SpcPoint

VALUES_TRACE = 0
OUT_OF_SPEC_TRACE = 1
#: Nelson rule number -> index of its marker trace.
TRACE_OF_RULE: dict[int, int] = {rule: 1 + rule for rule in RULE_MARKERS}


def limits_key(chart: SpcChartData) -> str:
    """Identifies the chart's limits: when it changes, the chart is redrawn, not extended."""
    return "|".join(
        str(v)
        for v in (
            chart.characteristic,
            chart.lsl,
            chart.target,
            chart.usl,
            chart.centre,
            chart.ucl,
            chart.lcl,
        )
    )


def spc_trace_points(points: list[SpcPoint]) -> dict[int, dict[str, list[Any]]]:
    """The x/y/text additions per trace index for ``points``: the unit of a live extend."""
    out: dict[int, dict[str, list[Any]]] = {
        i: {"x": [], "y": [], "text": []}
        for i in (VALUES_TRACE, OUT_OF_SPEC_TRACE, *TRACE_OF_RULE.values())
    }
    for p in points:
        x = iso(p.at)
        hover = (
            f"{p.value:g}"
            + (f"<br>lot {p.lot}" if p.lot else "")
            + (f"<br>job order {p.job_order}" if p.job_order else "")
        )
        if p.rules:
            hover += "<br>" + "<br>".join(RULE_TEXT.get(r, f"rule {r}") for r in p.rules)
        if p.out_of_spec:
            hover += "<br>out of specification"
        out[VALUES_TRACE]["x"].append(x)
        out[VALUES_TRACE]["y"].append(p.value)
        out[VALUES_TRACE]["text"].append(hover)
        if p.out_of_spec:
            out[OUT_OF_SPEC_TRACE]["x"].append(x)
            out[OUT_OF_SPEC_TRACE]["y"].append(p.value)
            out[OUT_OF_SPEC_TRACE]["text"].append(hover)
        for rule in p.rules:
            idx = TRACE_OF_RULE.get(rule)
            if idx is not None:
                out[idx]["x"].append(x)
                out[idx]["y"].append(p.value)
                out[idx]["text"].append(hover)
    return out


def _hline(y: float, colour: str, dash: str) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "y0": y,
        "y1": y,
        "line": {"color": colour, "width": 1.5, "dash": dash},
    }


def _label(y: float, text: str, colour: str, yshift: int = 0) -> dict[str, Any]:
    return {
        "yshift": yshift,
        "xref": "paper",
        "x": 1.0,
        "xanchor": "left",
        "y": y,
        "text": f"{text} {y:g}",
        "showarrow": False,
        "font": {"color": colour, "size": 11},
    }


def spc_title(chart: SpcChartData) -> str:
    """``fill weight (g): 120 results, 3 rule violations``."""
    unit = f" ({chart.unit})" if chart.unit else ""
    violations = sum(1 for p in chart.points if p.rules)
    return (
        f"{chart.characteristic}{unit}: {len(chart.points)} results, {violations} rule violations"
    )


def spc_figure(chart: SpcChartData) -> Figure:
    """The I chart of ``chart`` (see the module docstring for what is drawn)."""
    adds = spc_trace_points(list(chart.points))
    data: list[dict[str, Any]] = [
        {
            "type": "scattergl",
            "mode": "lines+markers",
            "name": chart.characteristic,
            **adds[VALUES_TRACE],
            "hoverinfo": "x+text",
            "line": {"color": "#455a64", "width": 1},
            "marker": {"color": "#455a64", "size": 5},
        },
        {
            "type": "scattergl",
            "mode": "markers",
            "name": "out of spec",
            **adds[OUT_OF_SPEC_TRACE],
            "hoverinfo": "x+text",
            "marker": {
                "symbol": "circle-open",
                "size": 14,
                "color": "#c62828",
                "line": {"width": 2, "color": "#c62828"},
            },
        },
    ]
    for rule, idx in TRACE_OF_RULE.items():
        symbol, colour = RULE_MARKERS[rule]
        data.append(
            {
                "type": "scattergl",
                "mode": "markers",
                "name": RULE_TEXT[rule],
                **adds[idx],
                "hoverinfo": "x+text",
                "marker": {
                    "symbol": symbol,
                    "size": 11,
                    "color": colour,
                    "line": {"width": 2, "color": colour},
                },
            }
        )
    shapes: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    for value, text, colour, dash in (
        (chart.centre, "CL", "#2e7d32", "solid"),
        (chart.ucl, "UCL", "#ef6c00", "dash"),
        (chart.lcl, "LCL", "#ef6c00", "dash"),
        (chart.usl, "USL", "#c62828", "solid"),
        (chart.lsl, "LSL", "#c62828", "solid"),
        (chart.target, "target", "#1565c0", "dot"),
    ):
        if value is not None:
            shapes.append(_hline(value, colour, dash))
            # The centre line and the target often nearly coincide: keep both readable.
            shift = {"CL": 7, "target": -7}.get(text, 0)
            labels.append(_label(value, text, colour, shift))
    return {
        "data": data,
        "layout": figure_layout(
            title={"text": spc_title(chart), "x": 0.02},
            height=320,
            margin={"l": 50, "r": 90, "t": 40, "b": 40},
            shapes=shapes,
            annotations=labels,
            xaxis={"type": "date", "title": {"text": "UTC"}},
            yaxis={"title": {"text": chart.unit or "value"}},
            legend={"orientation": "h", "y": -0.25},
        ),
    }
