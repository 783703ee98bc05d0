"""Splits by product: a line whose units take different ways by product, and merge again.

A line with a buffer that names ``products`` (``Buffer.products``) is a split line. Its
flow is written by its buffers: a station passes its units by the buffers whose upstream it
is, to any later station of the list, or, with none, to the next station (a direct
hand-off). A station with several outgoing buffers is a split: a unit leaves by the buffer
that names its product, else by the one that names none. A station fed by several buffers
is a merge: it takes the unit that has waited longest (first come, first served across
its inputs). Flow only runs forward in the list, so it has no cycle. Each product's
operation segments must run on stations its units pass (``segments_of`` maps them in list
order by equipment class: give each branch's machines classes of their own).
``split_problems`` names every way a line breaks these rules, as (field path, message).
"""

from __future__ import annotations

from dataclasses import dataclass

from plant_models.schema import Line, Loc, Product, WorkUnit, segments_of, stations_of

Route = tuple[int, frozenset[str] | None, str | None]
"""(station it leads to, the products it takes or None: the others, buffer code or None)"""


@dataclass(frozen=True)
class SplitFlow:
    """Where each station of a split line (``stations_of`` order) passes its units."""

    stations: list[tuple[str, list[WorkUnit]]]
    out: list[list[Route]]
    preds: list[list[int]]
    chain_start: list[int]
    """For each station, the first station of its unbranched chain (rework stays on it)."""

    def route(self, k: int, product: str) -> Route | None:
        """The way a unit of ``product`` leaves station ``k`` (None: there is none)."""
        routes = self.out[k]
        if len(routes) == 1:
            return routes[0]
        for r in routes:
            if r[1] is not None and product in r[1]:
                return r
        return next((r for r in routes if r[1] is None), None)

    def path(self, product: str) -> list[int]:
        """The stations a unit of ``product`` passes, from the first."""
        k, out = 0, [0]
        while (r := self.route(k, product)) is not None:
            k = r[0]
            out.append(k)
        return out


def has_splits(line: Line) -> bool:
    return any(b.products is not None for b in line.buffers)


def split_flow(line: Line) -> SplitFlow:
    stations = stations_of(line)
    index = {code: k for k, (code, _) in enumerate(stations)}
    out: list[list[Route]] = [[] for _ in stations]
    for b in line.buffers:
        up, down = index.get(b.upstream), index.get(b.downstream)
        if up is None or down is None or down <= up:
            continue  # named by the checks
        products = None if b.products is None else frozenset(b.products)
        out[up].append((down, products, b.code))
    for k in range(len(stations) - 1):
        if not out[k]:
            out[k].append((k + 1, None, None))
    preds: list[list[int]] = [[] for _ in stations]
    for k, routes in enumerate(out):
        for t, _, _ in routes:
            preds[t].append(k)
    chain_start: list[int] = []
    for k in range(len(stations)):
        joins = k == 0 or preds[k] != [k - 1] or len(out[k - 1]) > 1
        chain_start.append(k if joins else chain_start[k - 1])
    return SplitFlow(stations, out, preds, chain_start)


def split_problems(line: Line, li: int, products: list[Product]) -> list[tuple[Loc, str]]:
    """What is wrong with the splits and merges of ``line`` (``lines[li]``)."""
    if not has_splits(line):
        return []
    problems: list[tuple[Loc, str]] = []
    flow = split_flow(line)
    stations = flow.stations
    index = {code: k for k, (code, _) in enumerate(stations)}
    wi_of = {wu.code: wi for wi, wu in enumerate(line.work_units)}
    known = {p.id for p in products}
    if any(wu.assembly is not None for wu in line.work_units):
        bi = next(i for i, b in enumerate(line.buffers) if b.products is not None)
        problems.append(
            (
                ("lines", li, "buffers", bi, "products"),
                "a line with an assembly station has no splits by product (not modelled)",
            )
        )
        return problems
    defaults: dict[int, str] = {}
    routed: dict[tuple[int, str], str] = {}
    for bi, b in enumerate(line.buffers):
        loc: Loc = ("lines", li, "buffers", bi)
        up, down = index.get(b.upstream), index.get(b.downstream)
        if up is None or down is None:
            continue  # the buffer's own check names it
        if down <= up:
            problems.append(
                (
                    (*loc, "downstream"),
                    f"buffer {b.code} goes back from {b.upstream} to {b.downstream}: flow runs "
                    "forward in the line's list (a cycle otherwise); rework goes back by "
                    "rework:",
                )
            )
            continue
        if b.products is None:
            if up in defaults:
                problems.append(
                    (
                        loc,
                        f"{b.upstream} has two ways out without products ({defaults[up]}, "
                        f"{b.code}): name the products of all but one",
                    )
                )
            defaults[up] = b.code
            continue
        for pi, p in enumerate(b.products):
            if p not in known:
                problems.append(((*loc, "products", pi), f"no product {p!r}"))
            elif (up, p) in routed:
                problems.append(
                    (
                        (*loc, "products", pi),
                        f"{b.upstream} already sends {p} by {routed[(up, p)]}",
                    )
                )
            routed[(up, p)] = b.code
    for k, (code, units) in enumerate(stations):
        if k > 0 and not flow.preds[k]:
            problems.append(
                (
                    ("lines", li, "work_units", wi_of[units[0].code]),
                    f"no station passes units to {code}: give it a buffer from an earlier one",
                )
            )
        if len(flow.preds[k]) > 1 and len(units) > 1:
            problems.append(
                (
                    ("lines", li, "work_units", wi_of[units[0].code], "station"),
                    f"{code} merges several ways: a merge is one work unit",
                )
            )
    if problems:
        return problems
    for pi, product in enumerate(products):
        if product.line != line.code:
            continue
        path = flow.path(product.id)
        end = path[-1]
        if end != len(stations) - 1:
            code = stations[end][0]
            problems.append(
                (
                    ("products", pi, "line"),
                    f"units of {product.id} stop at {code}: no buffer out of it takes "
                    f"{product.id} (name it in one's products, or leave one without)",
                )
            )
            continue
        on_path = {u.code for k in path for u in stations[k][1]}
        for wu, seg in zip(line.work_units, segments_of(product, line), strict=True):
            if seg is None or wu.code in on_path:
                continue
            si = product.segments.index(seg)
            problems.append(
                (
                    ("products", pi, "segments", si, "equipment_class"),
                    f"segment {seg.id} would run on {wu.code}, which units of {product.id} "
                    "do not pass: segments run on the first station of their class in the "
                    "line's list; give each branch's machines classes of their own",
                )
            )
    return problems
