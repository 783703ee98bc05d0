"""Plant (Andon): every line and work unit as a tile coloured by its state.

Live: the first answer draws the whole board; later ones patch only the tiles whose text
changed (a tile's *signature*), so a 200-unit plant costs a few tiles per second on the
wire, not the whole board.
"""

from __future__ import annotations

import zlib
from typing import Any

from dash import Dash, Output, Patch, html, no_update

from dashboards.figures.andon import (
    andon_board,
    board_shape,
    board_signatures,
    line_summary,
    plant_summary,
    work_unit_tile,
)
from dashboards.figures.common import iso
from dashboards.live import (
    banner_ok,
    banner_outputs,
    cursor_output,
    cursor_state,
    live_components,
    no_pile_up,
    tick_input,
)
from dashboards.pages.base import PageContext, failure_banner
from dashboards.source import SourceError
from dashboards.theme import STATE_ORDER, state_colour

PATH = "/"
TITLE = "Plant"
PAGE = "plant"


def layout(ctx: PageContext, query: dict[str, list[str]]) -> html.Div:
    return html.Div(
        [
            *live_components(PAGE, ctx.period_ms),
            html.H2(["Plant", html.Span(id="plant-asof", className="asof")]),
            html.Div(id="plant-chips", className="chips"),
            html.Div(id="plant-board"),
        ],
        className="page",
    )


def _chips(counts: dict[str, int]) -> list[html.Span]:
    chips = [
        html.Span(f"{counts[s]} {s}", className="chip", style={"backgroundColor": state_colour(s)})
        for s in (*STATE_ORDER, *sorted(set(counts) - set(STATE_ORDER) - {"alarms"}))
        if counts.get(s)
    ]
    if counts.get("alarms"):
        chips.append(
            html.Span(
                f"⚠ {counts['alarms']} active alarm{'s' if counts['alarms'] > 1 else ''}",
                className="chip",
                style={"backgroundColor": "#b71c1c"},
                id="plant-alarm-chip",
            )
        )
    return chips


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def register(app: Dash, ctx: PageContext) -> None:
    @app.callback(
        Output("plant-board", "children"),
        Output("plant-chips", "children"),
        Output("plant-asof", "children"),
        *banner_outputs(PAGE),
        cursor_output(PAGE),
        tick_input(PAGE),
        cursor_state(PAGE),
        running=no_pile_up(PAGE),
    )
    def refresh(_tick: int, cursor: dict[str, Any] | None) -> tuple[Any, ...]:
        try:
            view = ctx.read(lambda source: source.plant())
        except SourceError as exc:
            return (no_update, no_update, no_update, *failure_banner(exc), no_update)
        shape = board_shape(view)
        sigs = [[_crc(s) for s in line] for line in board_signatures(view)]
        heads = [line_summary(line) for line in view.lines]
        new_cursor = {"shape": shape, "sigs": sigs, "heads": heads}
        asof = f"as of {iso(view.at)[11:19]} UTC · {view.tile_count} work units"
        chips = _chips(plant_summary(view))
        if not cursor or cursor.get("shape") != shape:
            return (andon_board(view), chips, asof, *banner_ok(), new_cursor)
        board = Patch()
        changed = 0
        for i, line in enumerate(view.lines):
            section = board[i]["props"]["children"]
            if cursor["heads"][i] != heads[i]:
                section[0]["props"]["children"][1]["props"]["children"] = heads[i]
            for j, tile in enumerate(line.tiles):
                if cursor["sigs"][i][j] != sigs[i][j]:
                    section[1]["props"]["children"][j] = work_unit_tile(tile, view.at)
                    changed += 1
        return (board, chips, asof, *banner_ok(), new_cursor)
