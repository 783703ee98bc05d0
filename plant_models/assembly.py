"""Assembly lines: the flow of a line with assembly (merge) stations, and its checks.

A line's work units are listed in flow order. Without an assembly each station passes its
units to the next one. With assembly stations (``WorkUnit.assembly``) the line is a tree
of branches, still written as one list:

- a station passes its units to the next station of the list, except the last station of
  a feeder branch, which passes them to the assembly it feeds (through a buffer that the
  assembly names in its ``inputs``);
- a station that follows a feeder's last station in the list, and is not an assembly,
  starts a new feeder branch: like the line's first station it releases new parts of the
  job order, ``quantity x`` the parts each assembled unit takes (``parts_per_unit``);

so a kit line reads: feeder A's stations, feeder B's stations, the assembly, the stations
after it. Flow only runs forward in the list (a feeder comes before its assembly), so the
flow has no cycle. ``assembly_problems`` names every way a line breaks these rules, as
(field path, message) for ``plant_models.loader``'s file:line errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from plant_models.schema import Line, Loc, OperationSegment, Product, WorkUnit, segments_of
from plant_models.schema import stations_of as _stations_of


@dataclass(frozen=True)
class LineFlow:
    """Where each station of a line (``stations_of`` order) passes its units."""

    stations: list[tuple[str, list[WorkUnit]]]
    successor: list[int | None]
    """The station each one passes its units to (None: they leave the line, or go nowhere
    on an invalid line)."""
    feeds: dict[int, tuple[int, int, str]]
    """Feeder station -> (assembly station, parts per assembled unit, input buffer)."""
    assemblies: list[int]
    heads: list[int]
    """Stations that release new units of the job order (no station feeds them)."""
    chain_start: list[int]
    """For each station, the head or assembly its unbranched chain starts at."""

    def parts_per_unit(self, head: int) -> int:
        """Parts ``head`` releases per unit the line makes (product of the input
        quantities of the assemblies on its way)."""
        n, k = 1, head
        while (nxt := self.successor[k]) is not None:
            if k in self.feeds:
                n *= self.feeds[k][1]
            k = nxt
        return n

    def feeder_head(self, k: int) -> int | None:
        """The head whose parts station ``k`` works when ``k`` is on a feeder branch that
        starts at a head (a scrapped part there is replaced by the head), else None."""
        start = self.chain_start[k]
        if start not in self.heads or not self.assemblies:
            return None
        end = k
        while end not in self.feeds and self.successor[end] is not None:
            end = self.successor[end]  # type: ignore[assignment]
        return start if end in self.feeds else None


def line_flow(line: Line) -> LineFlow:
    """The flow of ``line``: a serial line's stations each pass to the next."""
    stations = _stations_of(line)
    index = {code: k for k, (code, _) in enumerate(stations)}
    buffers = {b.code: b for b in line.buffers}
    assemblies = [k for k, (_, units) in enumerate(stations) if units[0].assembly is not None]
    feeds: dict[int, tuple[int, int, str]] = {}
    for k in assemblies:
        spec = stations[k][1][0].assembly
        assert spec is not None
        for inp in spec.inputs:
            buf = buffers.get(inp.buffer)
            if buf is None or buf.downstream != stations[k][0] or buf.upstream not in index:
                continue
            up = index[buf.upstream]
            if up < k and up not in feeds:
                feeds[up] = (k, inp.quantity, buf.code)
    is_assembly = set(assemblies)
    successor: list[int | None] = []
    for k in range(len(stations)):
        if k in feeds:
            successor.append(feeds[k][0])
        elif k + 1 < len(stations) and k + 1 not in is_assembly:
            successor.append(k + 1)
        else:
            successor.append(None)
    fed = {s for s in successor if s is not None}
    heads = [k for k in range(len(stations)) if k not in fed and k not in is_assembly]
    chain_start: list[int] = []
    for k in range(len(stations)):
        chain_start.append(k if k in heads or k in is_assembly else chain_start[k - 1])
    return LineFlow(stations, successor, feeds, assemblies, heads, chain_start)


def assembly_problems(line: Line, li: int) -> list[tuple[Loc, str]]:
    """What is wrong with the assembly stations of ``line`` (``lines[li]``)."""
    flow = line_flow(line)
    if not flow.assemblies:
        return []
    problems: list[tuple[Loc, str]] = []
    stations = flow.stations
    index = {code: k for k, (code, _) in enumerate(stations)}
    wi_of = {wu.code: wi for wi, wu in enumerate(line.work_units)}
    buffers = {b.code: b for b in line.buffers}
    fed_by: dict[str, tuple[str, str]] = {}  # feeder station -> (assembly, buffer)
    for k in flow.assemblies:
        code, units = stations[k]
        wloc: Loc = ("lines", li, "work_units", wi_of[units[0].code])
        if len(units) > 1:
            problems.append(
                (
                    (*wloc, "station"),
                    f"assembly {units[0].code} is one work unit: a parallel station of "
                    "assemblies is not modelled",
                )
            )
        spec = units[0].assembly
        assert spec is not None
        for ii, inp in enumerate(spec.inputs):
            iloc: Loc = (*wloc, "assembly", "inputs", ii, "buffer")
            buf = buffers.get(inp.buffer)
            if buf is None:
                problems.append((iloc, f"no buffer {inp.buffer!r} on line {line.code}"))
                continue
            if buf.downstream != code:
                problems.append(
                    (
                        iloc,
                        f"buffer {buf.code} leads to {buf.downstream}, not to this assembly "
                        f"({code}): a feeder's buffer names the assembly as its downstream",
                    )
                )
                continue
            up = index.get(buf.upstream)
            if up is None:
                continue  # the buffer's own check names it
            if up >= k:
                problems.append(
                    (
                        iloc,
                        f"buffer {buf.code} comes from {buf.upstream}, which is not before "
                        f"the assembly {code} in the line's list: the assembly would feed "
                        "its own feeder (a cycle); list a feeder branch before its assembly",
                    )
                )
                continue
            if buf.upstream in fed_by:
                other, via = fed_by[buf.upstream]
                problems.append(
                    (
                        iloc,
                        f"station {buf.upstream} already feeds {other} through {via}: "
                        "a feeder branch ends at one assembly input",
                    )
                )
                continue
            fed_by[buf.upstream] = (code, buf.code)
    last = len(stations) - 1
    for k, nxt in enumerate(flow.successor):
        if nxt is None and k != last:
            code, units = stations[k]
            after = stations[k + 1][0]
            problems.append(
                (
                    ("lines", li, "work_units", wi_of[units[-1].code]),
                    f"the units of {code} go nowhere: the next station {after} is an "
                    f"assembly it does not feed; give a buffer from {code} to {after} and "
                    f"name it in {after}'s assembly.inputs",
                )
            )
    if line.arrivals is not None:
        problems.append(
            (
                ("lines", li, "arrivals"),
                "a line with assembly stations releases parts at each feeder branch: "
                "arrivals (an open line's single entry) are not modelled there",
            )
        )
    for k, (_, units) in enumerate(stations):
        if flow.chain_start[k] in flow.assemblies and flow.feeder_head(k) is None:
            end = k
            while end not in flow.feeds and flow.successor[end] is not None:
                end = flow.successor[end]  # type: ignore[assignment]
            if end not in flow.feeds:
                continue
            for wu in units:
                if wu.scrap_probability > 0:
                    problems.append(
                        (
                            ("lines", li, "work_units", wi_of[wu.code], "scrap_probability"),
                            f"{wu.code} works a sub-assembly that feeds another assembly: "
                            "a scrapped sub-assembly would leave that assembly short (it is "
                            "not re-made); scrap before an assembly or after the last one",
                        )
                    )
    return problems


def segment_predecessors(product: Product, line: Line) -> dict[str, list[str]]:
    """For each operation segment of ``product``, the segments it follows in the flow:
    those of the nearest stations upstream that run one (a feeder's segments for an
    assembly's, none for a feeder's first). ISA-95 Part 2 segment dependencies; on a serial
    line each segment follows the one before it."""
    flow = line_flow(line)
    by_wu = dict(zip((wu.code for wu in line.work_units), segments_of(product, line), strict=True))
    runs: list[OperationSegment | None] = [by_wu[units[0].code] for _, units in flow.stations]
    preds: dict[int, list[int]] = {}
    for k, nxt in enumerate(flow.successor):
        if nxt is not None:
            preds.setdefault(nxt, []).append(k)

    def upstream(k: int) -> list[str]:
        out: list[str] = []
        for p in preds.get(k, []):
            seg = runs[p]
            out += [seg.id] if seg is not None else upstream(p)
        return out

    return {seg.id: upstream(k) for k, seg in enumerate(runs) if seg is not None}
