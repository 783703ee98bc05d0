"""The Andon board: one tile per work unit, grouped by line, coloured by state.

Tiles are Dash HTML components rather than a figure: text stays crisp and selectable, 200
tiles render in a few milliseconds, and a live update replaces only the tiles whose
*signature* (everything the tile shows) changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dash import html

from dashboards.figures.common import format_duration, number
from dashboards.theme import state_colour
from dashboards.views import LineTiles, PlantView, WorkUnitTile

#: Alarms at or above this severity (OPC UA severity 1..1000) make a tile blink.
HIGH_SEVERITY = 700


def tile_signature(tile: WorkUnitTile, now: datetime) -> str:
    """Everything a tile shows, as one string: equal signatures render identically."""
    return "|".join(
        (
            tile.state,
            tile.state_reason,
            _in_state_text(tile, now),
            tile.job_order or "",
            str(tile.job_order_held),
            number(tile.good),
            number(tile.scrap),
            tile.alarm or "",
            str(tile.alarm_severity >= HIGH_SEVERITY),
        )
    )


def _in_state_text(tile: WorkUnitTile, now: datetime) -> str:
    if tile.state_since is None:
        return ""
    return format_duration((now - tile.state_since).total_seconds())


def work_unit_tile(tile: WorkUnitTile, now: datetime) -> html.Div:
    """One tile: code and state on top, job order, counts, then the alarm or reason.

    Few components on purpose (the browser renders 200 tiles; each component costs):
    plain text where styling can come from the stylesheet.
    """
    classes = ["tile", f"state-{tile.state}"]
    if tile.alarm:
        classes.append("alarm")
        if tile.alarm_severity >= HIGH_SEVERITY:
            classes.append("alarm-high")
    in_state = _in_state_text(tile, now)
    state_line = tile.state.upper() + (f" · {in_state}" if in_state else "")
    if tile.job_order:
        job = f"Job {tile.job_order}" + (" · ON HOLD" if tile.job_order_held else "")
    else:
        job = "no job order"
    children: list[Any] = [
        html.Div([html.B(tile.code), html.Span(state_line)], className="tile-head"),
        html.Div(tile.name or tile.equipment_class or "", className="tile-name"),
        html.Div(job, className="tile-job held" if tile.job_order_held else "tile-job"),
        html.Div(f"good {number(tile.good)} · scrap {number(tile.scrap)}", className="tile-counts"),
    ]
    if tile.alarm:
        children.append(html.Div("⚠ " + tile.alarm, className="tile-alarm"))
    elif tile.state_reason:
        children.append(html.Div(tile.state_reason, className="tile-reason"))
    return html.Div(
        children,
        className=" ".join(classes),
        style={"borderLeftColor": state_colour(tile.state)},
        title=f"{tile.code}: {tile.state}"
        + (f" ({tile.state_reason})" if tile.state_reason else ""),
        **data_attributes(tile),
    )


def data_attributes(tile: WorkUnitTile) -> dict[str, Any]:
    """``data-*`` attributes of a tile: machine-readable state and counts (browser tests,
    user scripts) that do not depend on how the text is formatted."""
    return {"data-state": tile.state, "data-good": number(tile.good), "data-code": tile.code}


def line_summary(line: LineTiles) -> str:
    """``12 running · 3 down · 1 alarm`` for a line header."""
    counts: dict[str, int] = {}
    for tile in line.tiles:
        counts[tile.state] = counts.get(tile.state, 0) + 1
    parts = [f"{n} {state}" for state, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    alarms = sum(1 for t in line.tiles if t.alarm)
    if alarms:
        parts.append(f"{alarms} alarm{'s' if alarms > 1 else ''}")
    return " · ".join(parts)


def plant_summary(view: PlantView) -> dict[str, int]:
    """Work units per state over the whole plant, plus active alarms."""
    counts: dict[str, int] = {}
    alarms = 0
    for line in view.lines:
        for tile in line.tiles:
            counts[tile.state] = counts.get(tile.state, 0) + 1
            alarms += 1 if tile.alarm else 0
    counts["alarms"] = alarms
    return counts


def andon_board(view: PlantView) -> list[html.Div]:
    """Every line as a section of tiles: the board's children (one Div per line)."""
    return [line_section(line, view.at) for line in view.lines]


def line_section(line: LineTiles, now: datetime) -> html.Div:
    """A line's header and its tile grid."""
    return html.Div(
        [
            html.Div(
                [
                    html.H3(line.name or line.code, className="line-title"),
                    html.Span(line_summary(line), className="line-summary"),
                ],
                className="line-head",
            ),
            html.Div([work_unit_tile(t, now) for t in line.tiles], className="tile-grid"),
        ],
        className="line-section",
        id={"type": "line-section", "code": line.code},
    )


def board_shape(view: PlantView) -> list[list[str]]:
    """The board's structure (lines and their work unit codes): when it changes, the
    board is redrawn; when it does not, only changed tiles are patched."""
    return [[line.code, *[t.code for t in line.tiles]] for line in view.lines]


def board_signatures(view: PlantView) -> list[list[str]]:
    """Per line, per tile: the signature that decides whether a tile must be re-sent."""
    return [[tile_signature(t, view.at) for t in line.tiles] for line in view.lines]
