"""Cross references of a plant model: what pydantic's field checks cannot see (a product's
line, a segment's equipment class, an operator's calendar, buffers and stations, lots and
materials, the routing against the machines that run it, shifts and breaks). Each problem
is (field path, message); ``plant_models.loader.load_plant_model`` turns them into
``file:line: field: message``. ``PlantModel`` runs them after its own validation.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import time

from plant_models.assembly import assembly_problems, line_flow
from plant_models.batch import batch_problems
from plant_models.distributions import is_nonnegative, spread
from plant_models.schema import Loc, PlantModel, format_loc, segments_of, stations_of
from plant_models.splits import has_splits, split_flow, split_problems


def reference_problems(model: PlantModel) -> list[tuple[Loc, str]]:
    """Every cross-reference problem of ``model`` as (field path, message)."""
    problems: list[tuple[Loc, str]] = []

    def bad(loc: Loc, message: str) -> None:
        problems.append((loc, message))

    def dupes(items: list[tuple[Loc, str]], what: str) -> None:
        seen: dict[str, Loc] = {}
        for loc, key in items:
            if key in seen:
                bad(loc, f"duplicate {what} {key!r} (first at {format_loc(seen[key])})")
            else:
                seen[key] = loc

    codes: list[tuple[Loc, str]] = []
    for li, line in enumerate(model.lines):
        codes.append((("lines", li, "code"), line.code))
        codes += [
            (("lines", li, "work_units", i, "code"), w.code) for i, w in enumerate(line.work_units)
        ]
        codes += [(("lines", li, "buffers", i, "code"), b.code) for i, b in enumerate(line.buffers)]
        named: set[str] = set()
        for i, w in enumerate(line.work_units):
            if w.station is not None and w.station not in named:
                named.add(w.station)
                codes.append((("lines", li, "work_units", i, "station"), w.station))
    dupes(codes, "equipment code")
    dupes([(("materials", i, "id"), m.id) for i, m in enumerate(model.materials)], "material")
    dupes([(("material_lots", i, "id"), m.id) for i, m in enumerate(model.material_lots)], "lot")
    dupes([(("products", i, "id"), p.id) for i, p in enumerate(model.products)], "product")
    dupes([(("operators", i, "id"), o.id) for i, o in enumerate(model.operators)], "operator")
    cals = model.shift_calendars
    dupes([(("shift_calendars", i, "id"), c.id) for i, c in enumerate(cals)], "shift calendar")
    jobs = model.order_stream.job_orders
    dupes(
        [(("order_stream", "job_orders", i, "id"), j.id) for i, j in enumerate(jobs)], "job order"
    )

    lines = {line.code: line for line in model.lines}
    materials = {m.id for m in model.materials}
    products = {p.id: p for p in model.products}
    skills_known = {s for o in model.operators for s in o.skills}
    calendars = {c.id: c for c in model.shift_calendars}

    for li, line in enumerate(model.lines):
        stations = stations_of(line)
        order = [code for code, _ in stations]
        flow = line_flow(line)
        problems.extend(assembly_problems(line, li))
        split = split_flow(line) if has_splits(line) else None  # routing by product
        problems.extend(split_problems(line, li, model.products))
        seen_station: dict[str, int] = {}
        for wi, wu in enumerate(line.work_units):
            if wu.station is None:
                continue
            stloc: Loc = ("lines", li, "work_units", wi, "station")
            first = seen_station.setdefault(wu.station, wi)
            if first != wi and line.work_units[wi - 1].station != wu.station:
                bad(
                    stloc,
                    f"the work units of station {wu.station!r} must be consecutive "
                    f"(the first is work_units[{first}])",
                )
            elif first != wi and wu.equipment_class != line.work_units[first].equipment_class:
                bad(
                    stloc,
                    f"the work units of station {wu.station!r} share one equipment class "
                    f"({line.work_units[first].equipment_class!r}), got {wu.equipment_class!r}",
                )
        station_codes = set(seen_station)
        pairs: set[tuple[str, str]] = set()
        for bi, buf in enumerate(line.buffers):
            loc: Loc = ("lines", li, "buffers", bi)
            if buf.capacity == 0 and buf.transfer_time is not None:
                bad(
                    (*loc, "transfer_time"),
                    "a conveyor of capacity 0 holds nothing in transit: give a capacity",
                )
            bad_end = False
            for end in ("upstream", "downstream"):
                name = getattr(buf, end)
                if name in order:
                    continue
                bad_end = True
                unit = next((w for w in line.work_units if w.code == name), None)
                if unit is not None and unit.station is not None:
                    bad(
                        (*loc, end),
                        f"work unit {name} is one of parallel station {unit.station}: "
                        f"name the station ({unit.station!r})",
                    )
                else:
                    known = "work unit or station" if station_codes else "work unit"
                    bad((*loc, end), f"no {known} {name!r} on line {line.code}")
            if bad_end or split is not None:  # a split line's buffers: ``split_problems``
                continue
            after = flow.successor[order.index(buf.upstream)]
            if order.index(buf.downstream) != after:
                expected = (
                    order[after]
                    if after is not None
                    else "none: it is the last"
                    if buf.upstream == order[-1]
                    else "none: see its station's error"
                )
                hint = ""
                if order.index(buf.downstream) in flow.assemblies:
                    hint = f"; an assembly's feeder: name {buf.code} in its assembly.inputs"
                bad(
                    (*loc, "downstream"),
                    f"expected the station after {buf.upstream} ({expected}), "
                    f"got {buf.downstream!r}" + hint,
                )
            if (buf.upstream, buf.downstream) in pairs:
                bad(loc, f"a second buffer between {buf.upstream} and {buf.downstream}")
            pairs.add((buf.upstream, buf.downstream))
            if buf.transfer_time is not None and not is_nonnegative(buf.transfer_time):
                bad((*loc, "transfer_time"), "a duration cannot be negative")
        if line.continuous_product is not None and line.continuous_product not in products:
            bad(("lines", li, "continuous_product"), f"no product {line.continuous_product!r}")
        for wi, wu in enumerate(line.work_units):
            wloc: Loc = ("lines", li, "work_units", wi)
            batch_problems(wu, wloc, bad)
            if wu.cycle_time is None:
                pass  # a batch unit (``batch_problems``)
            elif not is_nonnegative(wu.cycle_time):
                bad((*wloc, "cycle_time"), "a duration cannot be negative")
            elif wu.cycle_time.mean() <= 0:
                # A unit made in no time at all: the simulation would run without a word.
                bad(
                    (*wloc, "cycle_time"),
                    f"the mean cycle time must be > 0, got {wu.cycle_time.mean():g}",
                )
            if wu.setup is not None:
                for p in wu.setup.per_product:
                    if p not in products:
                        bad((*wloc, "setup", "per_product", p), f"no product {p!r}")
            if wu.rework is not None:
                rloc: Loc = (*wloc, "rework")
                here = next(k for k, (_, us) in enumerate(stations) if any(w is wu for w in us))
                target = wu.rework.to
                start = (split or flow).chain_start[here]  # 0 on a serial line
                if target in order[:start]:
                    bad(
                        (*rloc, "to"),
                        f"{target} is not on {wu.code}'s branch of the line (it begins at "
                        f"{order[start]}): rework goes back along its own branch, never "
                        "across an assembly, a split or a merge",
                    )
                elif target not in order[start : here + 1]:
                    unit = next((w for w in line.work_units if w.code == target), None)
                    hint = (
                        f": name its station ({unit.station!r})"
                        if unit is not None and unit.station is not None
                        else ""
                    )
                    bad(
                        (*rloc, "to"),
                        f"no station {target!r} at or before {wu.code} on line {line.code}" + hint,
                    )
                elif target == order[0]:
                    bad(
                        (*rloc, "to"),
                        f"{target} is the line's first station, which takes new units from "
                        "the job order: rework goes to a station with an input buffer",
                    )
                elif target == order[start] and (split is None or len(split.preds[start]) != 1):
                    what = (
                        "a merge"
                        if split is not None
                        else "an assembly"
                        if start in flow.assemblies
                        else "a feeder's first"
                    )
                    bad(
                        (*rloc, "to"),
                        f"{target} is {what} station, with no single input buffer: rework "
                        "goes to a station after it",
                    )
                if here == len(stations) - 1:
                    bad(
                        rloc,
                        f"{wu.code} is on the line's last station, whose good count is the "
                        "job order's output: inspect for rework before it",
                    )
                rule = wu.rework.rule
                if rule is not None and rule.value not in {pv.name for pv in wu.process_values}:
                    bad(
                        (*rloc, "rule", "value"),
                        f"{wu.code} has no process value {rule.value!r}",
                    )
            if wu.operator_attends == "cycle" and wu.operator_skill is None:
                bad(
                    (*wloc, "operator_attends"),
                    "an operator attends each cycle: name the skill (operator_skill)",
                )
            if wu.operator_skill is not None and wu.operator_skill not in skills_known:
                bad((*wloc, "operator_skill"), f"no operator has skill {wu.operator_skill!r}")
            names = Counter(pv.name for pv in wu.process_values)
            for pi, pv in enumerate(wu.process_values):
                if names[pv.name] > 1:
                    bad((*wloc, "process_values", pi, "name"), f"duplicate value {pv.name!r}")
                for p in pv.per_product:
                    if p not in products:
                        bad((*wloc, "process_values", pi, "per_product", p), f"no product {p!r}")

    start_day = model.plant.start.date()
    for i, lot in enumerate(model.material_lots):
        if lot.material not in materials:
            bad(("material_lots", i, "material"), f"no material {lot.material!r}")
        if lot.line is not None and lot.line not in lines:
            bad(("material_lots", i, "line"), f"no line {lot.line!r}")
        if lot.deviation == "expired" and (lot.expiry is None or lot.expiry >= start_day):
            bad(
                ("material_lots", i, "expiry"),
                f"a lot marked expired needs an expiry before the plant start {start_day}",
            )

    for pi, product in enumerate(model.products):
        ploc: Loc = ("products", pi)
        if product.material not in materials:
            bad((*ploc, "material"), f"no material {product.material!r}")
        pline = lines.get(product.line)
        if pline is None:
            bad((*ploc, "line"), f"no line {product.line!r}")
            continue
        classes = [units[0].equipment_class for _, units in stations_of(pline)]
        cursor = 0
        seg_ids = Counter(s.id for s in product.segments)
        for si, seg in enumerate(product.segments):
            sloc: Loc = (*ploc, "segments", si)
            if seg_ids[seg.id] > 1:
                bad((*sloc, "id"), f"duplicate segment {seg.id!r}")
            if seg.equipment_class in classes[cursor:]:
                cursor = classes.index(seg.equipment_class, cursor) + 1
            else:
                bad(
                    (*sloc, "equipment_class"),
                    f"line {pline.code} has no work unit of class {seg.equipment_class!r} "
                    "after the previous segment's (segments follow the line's flow)",
                )
            for mi, req in enumerate(seg.materials):
                if req.material not in materials:
                    bad((*sloc, "materials", mi, "material"), f"no material {req.material!r}")
            if seg.skill is not None and seg.skill not in skills_known:
                bad((*sloc, "skill"), f"no operator has skill {seg.skill!r}")
            if seg.output_material is not None:
                oloc: Loc = (*sloc, "output_material")
                if seg.output_material not in materials:
                    bad(oloc, f"no material {seg.output_material!r}")
                elif si == len(product.segments) - 1:
                    bad(
                        oloc,
                        "the last segment makes the product's material "
                        f"{product.material!r}: no intermediate output here",
                    )
                elif seg.output_material == product.material:
                    bad(oloc, f"{seg.output_material!r} is the product's (final) material")

    problems.extend(_spec_problems(model))

    for oi, op in enumerate(model.operators):
        cal = calendars.get(op.calendar)
        if cal is None:
            bad(("operators", oi, "calendar"), f"no shift calendar {op.calendar!r}")
        elif op.shift is not None and op.shift not in {s.name for s in cal.shifts}:
            bad(("operators", oi, "shift"), f"calendar {cal.id} has no shift {op.shift!r}")
        for i, code in enumerate(op.lines):
            if code not in lines:
                bad(("operators", oi, "lines", i), f"no line {code!r}")
        for ci, cert in enumerate(op.certifications):
            if cert.skill not in op.skills:
                bad(
                    ("operators", oi, "certifications", ci, "skill"),
                    f"certification for {cert.skill!r}, a skill the operator lacks",
                )

    for ji, job in enumerate(jobs):
        if job.product not in products:
            bad(("order_stream", "job_orders", ji, "product"), f"no product {job.product!r}")
    for gi, gen in enumerate(model.order_stream.generators):
        for p in gen.product_mix:
            if p not in products:
                bad(("order_stream", "generators", gi, "product_mix", p), f"no product {p!r}")

    for ci, cal in enumerate(cals):
        for si, shift in enumerate(cal.shifts):
            sh: Loc = ("shift_calendars", ci, "shifts", si)
            if shift.start == shift.end:
                bad((*sh, "end"), "a shift cannot end when it starts")
            for bi, brk in enumerate(shift.breaks):
                if not _within(shift.start, shift.end, brk.start, brk.end):
                    bad(
                        (*sh, "breaks", bi),
                        f"break {brk.start}-{brk.end} is outside shift {shift.start}-{shift.end}",
                    )
    return problems


def _spec_problems(model: PlantModel) -> list[tuple[Loc, str]]:
    """The routing against the machines that run it.

    A segment's standard run time (ISO 22400-2 PRU) must not exceed the mean cycle time of
    the work unit that runs it: a machine that beats its standard on average shows an
    effectiveness above 100 %, which is a master-data error, not a good day.

    For each product, a process value tied to an inspection characteristic of the segment
    that product runs on the work unit must be capable of that spec: its distribution for
    the product (``per_product`` or the default) keeps nearly all samples (mean +/- 3 sd,
    i.e. a process capability index Cpk >= 1 for a normal value; the bounds of a bounded
    one) within [LSL, USL]. Otherwise a clean run would make out-of-spec product.
    """
    problems: list[tuple[Loc, str]] = []
    index = {p.id: pi for pi, p in enumerate(model.products)}
    for li, line in enumerate(model.lines):
        for product in model.products:
            if product.line != line.code:
                continue
            for wi, (wu, seg) in enumerate(
                zip(line.work_units, segments_of(product, line), strict=True)
            ):
                if seg is None:
                    continue
                si = product.segments.index(seg)
                cycle = wu.mean_cycle_time()
                if seg.standard_run_time > cycle * (1 + 1e-9):
                    problems.append(
                        (
                            ("products", index[product.id], "segments", si, "standard_run_time"),
                            f"{seg.standard_run_time:g} s per unit is slower than {wu.code}'s "
                            f"mean cycle time {cycle:g} s: the machine would beat its standard "
                            "(ISO 22400-2:2014 effectiveness = PRU x PQ / APT above 100 %); "
                            "the routing's planned run time per unit must not exceed the "
                            "machine's ideal cycle time",
                        )
                    )
                limits = {c.name: (ci, c) for ci, c in enumerate(seg.inspections)}
                for pi, pv in enumerate(wu.process_values):
                    if pv.characteristic is None or pv.characteristic not in limits:
                        continue
                    ci, char = limits[pv.characteristic]
                    dist = pv.per_product.get(product.id, pv.distribution)
                    low, high = spread(dist)
                    lsl = -math.inf if char.lsl is None else char.lsl
                    usl = math.inf if char.usl is None else char.usl
                    if lsl <= low and high <= usl:
                        continue
                    where = (
                        ("per_product", product.id)
                        if product.id in pv.per_product
                        else ("distribution",)
                    )
                    seg_loc = format_loc(("products", index[product.id], "segments", si))
                    problems.append(
                        (
                            ("lines", li, "work_units", wi, "process_values", pi, *where),
                            f"{pv.name} for product {product.id} ranges {low:g} to {high:g} "
                            f"{pv.unit}, outside the spec {_limit(char.lsl)} to "
                            f"{_limit(char.usl)} {char.unit} of {char.name} "
                            f"({seg_loc}.inspections[{ci}]): a clean run would make "
                            f"out-of-spec product; give per_product.{product.id} a "
                            "distribution within the spec",
                        )
                    )
    return problems


def _limit(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _within(s_start: time, s_end: time, b_start: time, b_end: time) -> bool:
    """True when the break lies inside the shift (both may cross midnight)."""
    ss, se, bs, be = _minutes(s_start), _minutes(s_end), _minutes(b_start), _minutes(b_end)
    if se <= ss:
        se += 24 * 60
    if bs < ss:
        bs += 24 * 60
    if be <= bs:
        be += 24 * 60
    return ss <= bs < be <= se
