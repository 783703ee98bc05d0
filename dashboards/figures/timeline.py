"""Time charts: the equipment state Gantt of a line and throughput against plan.

The Gantt draws each state interval as a thick line segment on a WebGL trace (intervals
separated by gaps): a day of a 20-unit line is thousands of intervals, which SVG bars draw
slowly and WebGL draws at once. Its traces have fixed places so that a live update can
*extend* them: one trace per state for finished intervals (``closed_trace``), which only
ever grow, then one per state for the intervals still running (``open_trace``), a handful
that are replaced on each refresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from dashboards.figures import Figure
from dashboards.figures.common import format_duration, iso
from dashboards.theme import STATE_ORDER, figure_layout, state_colour
from dashboards.views import StateBar, ThroughputPoint

#: Pixel height of one work unit's row in the Gantt.
ROW_HEIGHT = 26


def gantt_states(bars: Iterable[StateBar]) -> list[str]:
    """The states the Gantt has traces for: the known ones, then any others by name."""
    extra = sorted({b.state for b in bars} - set(STATE_ORDER))
    return [*STATE_ORDER, *extra]


def closed_trace(states: Sequence[str], state: str) -> int:
    return states.index(state)


def open_trace(states: Sequence[str], state: str) -> int:
    return len(states) + states.index(state)


def too_short(bar: StateBar, min_seconds: float) -> bool:
    """A finished interval too short to see at the chart's scale (running ones always show)."""
    return not bar.open and (bar.end - bar.start).total_seconds() < min_seconds


def gantt_segments(
    bars: Iterable[StateBar], states: Sequence[str], min_seconds: float = 0.0
) -> dict[int, dict[str, list[Any]]]:
    """x/y/text additions per trace index for ``bars`` (the unit of a live extend);
    finished intervals shorter than ``min_seconds`` are left out."""
    out: dict[int, dict[str, list[Any]]] = {
        i: {"x": [], "y": [], "text": []} for i in range(2 * len(states))
    }
    for bar in bars:
        if too_short(bar, min_seconds):
            continue
        idx = open_trace(states, bar.state) if bar.open else closed_trace(states, bar.state)
        label = (
            f"{bar.work_unit}: {bar.state}"
            + (f" ({bar.reason})" if bar.reason else "")
            + f"<br>{iso(bar.start)[11:19]} → "
            + ("now" if bar.open else iso(bar.end)[11:19] + " UTC")
            + f", {format_duration((bar.end - bar.start).total_seconds())}"
        )
        seg = out[idx]
        seg["x"] += [iso(bar.start), iso(bar.end), None]
        seg["y"] += [bar.work_unit, bar.work_unit, None]
        seg["text"] += [label, label, None]
    return out


def gantt_figure(
    bars: Sequence[StateBar],
    work_units: Sequence[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    title: str = "Equipment states",
    min_seconds: float = 0.0,
) -> Figure:
    """State intervals of ``work_units`` (rows, top to bottom in the given order);
    finished intervals shorter than ``min_seconds`` (sub-pixel flicker) are not drawn."""
    states = gantt_states(bars)
    segments = gantt_segments(bars, states, min_seconds)
    finished = {b.state for b in bars if not b.open}
    data: list[dict[str, Any]] = []
    for is_open in (False, True):
        for state in states:
            idx = open_trace(states, state) if is_open else closed_trace(states, state)
            data.append(
                {
                    "type": "scattergl",
                    "mode": "lines",
                    "name": state,
                    "legendgroup": state,
                    # One legend entry per state shown: on its finished trace if it has
                    # one, else on its running one (an empty trace has no legend entry).
                    "showlegend": bool(segments[idx]["x"])
                    and (not is_open or state not in finished),
                    **segments[idx],
                    "hoverinfo": "text",
                    "line": {"color": state_colour(state), "width": ROW_HEIGHT * 0.7},
                    "connectgaps": False,
                }
            )
    rows = list(work_units)
    xaxis: dict[str, Any] = {"type": "date", "title": {"text": "UTC"}}
    if start is not None and end is not None:
        xaxis["range"] = [iso(start), iso(end)]
    return {
        "data": data,
        "layout": figure_layout(
            title={"text": title, "x": 0.02},
            height=max(220, 90 + ROW_HEIGHT * len(rows)),
            xaxis=xaxis,
            yaxis={
                "type": "category",
                "categoryorder": "array",
                "categoryarray": list(reversed(rows)),
                "range": [-0.5, len(rows) - 0.5],
                "fixedrange": True,
                "automargin": True,
            },
            legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        ),
    }


def gantt_title(bars: Sequence[StateBar], min_seconds: float) -> str:
    """The Gantt's title, saying how many intervals were too short to draw."""
    hidden = sum(1 for b in bars if too_short(b, min_seconds))
    if not hidden:
        return "Equipment states"
    return f"Equipment states ({hidden:,} intervals under {min_seconds:.0f} s not drawn)"


def throughput_figure(points: Sequence[ThroughputPoint]) -> Figure:
    """Cumulative good quantity over time, actual against plan (two WebGL lines).

    Trace 0 is the actual series and trace 1 the plan, so a live update can extend them by
    index without redrawing.
    """
    plan = [p for p in points if p.plan is not None]
    return {
        "data": [
            {
                "type": "scattergl",
                "mode": "lines",
                "name": "actual (good)",
                "x": [iso(p.at) for p in points],
                "y": [p.actual for p in points],
                "line": {"color": "#2e7d32", "width": 3},
            },
            {
                "type": "scattergl",
                "mode": "lines",
                "name": "plan",
                "x": [iso(p.at) for p in plan],
                "y": [p.plan for p in plan],
                "line": {"color": "#1565c0", "dash": "dash", "width": 2},
            },
        ],
        "layout": figure_layout(
            title={"text": "Throughput against plan (cumulative good units)", "x": 0.02},
            xaxis={"type": "date", "title": {"text": "UTC"}},
            yaxis={"title": {"text": "units"}, "rangemode": "tozero"},
            legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        ),
    }
