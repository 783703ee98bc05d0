"""A lot's genealogy as a layered graph: inputs to the left, the lot, products to the right.

Each lot sits in the column of its distance from the picked lot: -1 for what went into it,
-2 for what went into those, +1 for what it went into, and so on (breadth first, so a lot
reached by two paths takes the shorter one). Arrows point in the direction material flowed.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from dashboards.figures import Figure
from dashboards.figures.common import number
from dashboards.theme import LOT_STATUS_COLOURS, UNKNOWN_STATE_COLOUR, figure_layout
from dashboards.views import GenealogyView, LotNode

#: Beyond this many links arrow heads (annotations, costly in the browser) are left out.
MAX_ARROWS = 300


def layer_of_lots(view: GenealogyView) -> dict[str, int]:
    """Column of every lot: negative upstream (backward trace), positive downstream."""
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for link in view.links:
        parents.setdefault(link.child, []).append(link.parent)
        children.setdefault(link.parent, []).append(link.child)
    layer: dict[str, int] = {view.root: 0}
    for graph, step in ((parents, -1), (children, 1)):
        queue = deque([view.root])
        while queue:
            lot = queue.popleft()
            for nxt in graph.get(lot, []):
                if nxt not in layer:
                    layer[nxt] = layer[lot] + step
                    queue.append(nxt)
    # Lots linked only sideways (e.g. a sibling input of a downstream lot) go one column
    # before the lot they fed, so every arrow still points rightwards.
    known = [n.code for n in view.nodes] + [c for ln in view.links for c in (ln.parent, ln.child)]
    pending = [c for c in dict.fromkeys(known) if c not in layer]
    for _ in range(len(pending) + 1):
        if not pending:
            break
        still: list[str] = []
        for code in pending:
            fed = [layer[c] for c in children.get(code, []) if c in layer]
            fed_by = [layer[p] for p in parents.get(code, []) if p in layer]
            if fed:
                layer[code] = min(fed) - 1
            elif fed_by:
                layer[code] = max(fed_by) + 1
            else:
                still.append(code)
        pending = still
    for code in pending:
        layer[code] = 0
    return layer


def genealogy_positions(view: GenealogyView) -> dict[str, tuple[float, float]]:
    """(x, y) of every lot: x its column, y spread evenly and centred within the column."""
    layer = layer_of_lots(view)
    columns: dict[int, list[str]] = {}
    for code in sorted(layer, key=lambda c: (layer[c], c)):
        columns.setdefault(layer[code], []).append(code)
    pos: dict[str, tuple[float, float]] = {}
    for x, codes in columns.items():
        top = (len(codes) - 1) / 2
        for i, code in enumerate(codes):
            pos[code] = (float(x), top - i)
    return pos


def genealogy_figure(view: GenealogyView) -> Figure:
    """The trace of ``view.root``: nodes coloured by lot status, the picked lot ringed."""
    pos = genealogy_positions(view)
    nodes: dict[str, LotNode] = {n.code: n for n in view.nodes}
    for code in pos:
        nodes.setdefault(code, LotNode(code=code))
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    arrows: list[dict[str, Any]] = []
    for link in view.links:
        if link.parent not in pos or link.child not in pos:
            continue
        (x0, y0), (x1, y1) = pos[link.parent], pos[link.child]
        edge_x += [x0, x1, None]
        edge_y += [y0, y1, None]
        if len(view.links) <= MAX_ARROWS:
            arrows.append(
                {
                    "x": x1,
                    "y": y1,
                    "ax": x0,
                    "ay": y0,
                    "xref": "x",
                    "yref": "y",
                    "axref": "x",
                    "ayref": "y",
                    "showarrow": True,
                    "arrowhead": 2,
                    "arrowsize": 1.2,
                    "standoff": 14,
                    "startstandoff": 14,
                    "arrowcolor": "#90a4ae",
                    "text": "",
                }
            )
    codes = list(pos)
    hover = []
    for code in codes:
        n = nodes[code]
        hover.append(
            f"<b>{code}</b><br>material {n.material or '?'}<br>status {n.status or '?'}"
            + (f"<br>quantity {number(n.quantity)}" if n.quantity is not None else "")
        )
    layers = {round(p[0]) for p in pos.values()}
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": edge_x,
                "y": edge_y,
                "hoverinfo": "skip",
                "line": {"color": "#cfd8dc", "width": 1.5},
                "showlegend": False,
            },
            {
                "type": "scatter",
                "mode": "markers+text",
                "x": [pos[c][0] for c in codes],
                "y": [pos[c][1] for c in codes],
                "text": codes,
                "customdata": codes,
                "textposition": "bottom center",
                "hovertext": hover,
                "hoverinfo": "text",
                "marker": {
                    "size": [26 if c == view.root else 18 for c in codes],
                    "color": [
                        LOT_STATUS_COLOURS.get(nodes[c].status, UNKNOWN_STATE_COLOUR) for c in codes
                    ],
                    "line": {
                        "width": [4 if c == view.root else 1 for c in codes],
                        "color": ["#212121" if c == view.root else "white" for c in codes],
                    },
                },
                "showlegend": False,
            },
        ],
        "layout": figure_layout(
            title={
                "text": f"Genealogy of lot {view.root}: {len(codes)} lots, {len(view.links)} links "
                "(inputs ← | → products)",
                "x": 0.02,
            },
            height=max(
                360,
                80
                * max(
                    (sum(1 for p in pos.values() if round(p[0]) == x) for x in layers), default=1
                ),
            ),
            annotations=arrows,
            xaxis={
                "showgrid": False,
                "zeroline": False,
                "tickmode": "array",
                "tickvals": sorted(layers),
                "ticktext": [_column_label(x) for x in sorted(layers)],
            },
            yaxis={"showgrid": False, "zeroline": False, "showticklabels": False},
            hovermode="closest",
        ),
    }


def _column_label(x: int) -> str:
    if x == 0:
        return "picked lot"
    if x < 0:
        return f"input, depth {-x}"
    return f"product, depth {x}"
