"""Colours and labels shared by every page (one place, so a state looks the same everywhere).

State colours follow the usual andon convention (and the spirit of ISA-101 HMI guidance:
colour carries meaning, grey is normal-but-not-producing): green producing, red stopped by a
fault, amber/yellow held up by neighbours, blue changeover, purple planned maintenance.
"""

from __future__ import annotations

from typing import Any, Final

#: Work unit state -> tile / bar colour.
STATE_COLOURS: Final[dict[str, str]] = {
    "running": "#2e7d32",
    "idle": "#78909c",
    "down": "#c62828",
    "setup": "#1565c0",
    "blocked": "#ef6c00",
    "starved": "#f9a825",
    "maintenance": "#6a1b9a",
    "offline": "#37474f",
}

#: Colour of a state the dashboard does not know (a newer MES): visible, never hidden.
UNKNOWN_STATE_COLOUR: Final = "#9e9e9e"

#: Order of states in legends: producing first, then losses by severity.
STATE_ORDER: Final[tuple[str, ...]] = (
    "running",
    "setup",
    "idle",
    "starved",
    "blocked",
    "down",
    "maintenance",
    "offline",
)

#: Job order state -> badge colour.
JOB_ORDER_COLOURS: Final[dict[str, str]] = {
    "planned": "#90a4ae",
    "released": "#42a5f5",
    "dispatched": "#5c6bc0",
    "running": "#2e7d32",
    "completed": "#00897b",
    "closed": "#455a64",
    "held": "#c62828",
    "aborted": "#6d4c41",
}

#: Nelson rule number -> (marker symbol, colour) on SPC charts.
RULE_MARKERS: Final[dict[int, tuple[str, str]]] = {
    1: ("x", "#c62828"),
    2: ("square-open", "#ef6c00"),
    3: ("triangle-up-open", "#6a1b9a"),
    4: ("diamond-open", "#1565c0"),
}

RULE_TEXT: Final[dict[int, str]] = {
    1: "Rule 1: beyond 3σ",
    2: "Rule 2: 9 on one side",
    3: "Rule 3: 6 trending",
    4: "Rule 4: 14 alternating",
}

#: Lot status -> node colour on the genealogy graph.
LOT_STATUS_COLOURS: Final[dict[str, str]] = {
    "available": "#2e7d32",
    "released": "#00897b",
    "consumed": "#78909c",
    "quarantine": "#f9a825",
    "on_hold": "#c62828",
    "rejected": "#6d4c41",
}

#: ``config`` of every ``dcc.Graph``: no plotly logo, no "edit in chart studio".
GRAPH_CONFIG: Final[Any] = {"displaylogo": False}

FONT: Final = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def state_colour(state: str) -> str:
    """The colour of a work unit state; unknown states get a neutral grey."""
    return STATE_COLOURS.get(state, UNKNOWN_STATE_COLOUR)


def figure_layout(**extra: object) -> dict[str, object]:
    """Base layout of every figure: compact margins, the app's font, no plotly logo clutter."""
    base: dict[str, object] = {
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "font": {"family": FONT, "size": 12},
        "paper_bgcolor": "white",
        "plot_bgcolor": "#fafafa",
        "hovermode": "closest",
        "uirevision": "keep",
    }
    base.update(extra)
    return base
