"""Loading a scenario and checking it against its plant model: every problem names file,
line and field (a :class:`ScenarioError`, exit code 2). Also the run's ERP order stream,
drawn exactly as the engine would draw it for the scenario's seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plant_models.loader import PlantModelError, load_plant_model
from plant_models.scenario import (
    LotInState,
    OeeWithin,
    ProcessDrift,
    Scenario,
    ThroughputWithin,
    load_scenario,
    resolve_plant,
)
from plant_models.scenario_yaml import DocumentError, FieldProblem, locate
from plant_models.schema import PlantModel
from twin.scenario.sut import OrderRequest
from twin.streams import root_seed, sampler, substream


class ScenarioError(Exception):
    """The scenario (or its plant model) cannot be run as written: exit code 2."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def load(path: Path) -> tuple[Scenario, PlantModel, Path]:
    """Scenario, its plant model and the plant file; ``ScenarioError`` when broken."""
    try:
        scenario = load_scenario(path)
        plant_path = resolve_plant(scenario, path)
    except DocumentError as exc:
        raise ScenarioError([str(p) for p in exc.problems]) from None
    try:
        plant = load_plant_model(plant_path)
    except PlantModelError as exc:
        raise ScenarioError(
            [f"{path}: plant model {scenario.plant}:"] + [str(p) for p in exc.problems]
        ) from None
    problems = reference_problems(scenario, plant, path)
    if problems:
        raise ScenarioError([str(p) for p in problems])
    return scenario, plant, plant_path


def reference_problems(scenario: Scenario, plant: PlantModel, path: Path) -> list[FieldProblem]:
    """What the scenario names that its plant model does not have (work units, lots,
    people, products, orders, segments), each with file, line and field."""
    units = {wu.code for wu in plant.all_work_units()}
    lines = {line.code for line in plant.lines}
    lots = {lot.id for lot in plant.material_lots}
    people = {o.id for o in plant.operators}
    products = {p.id: p for p in plant.products}
    orders = {o.id: o.product for o in scenario_orders(scenario, plant)}
    out: list[FieldProblem] = []

    def bad(loc: tuple[str | int, ...], message: str) -> None:
        out.append(FieldProblem(str(path), locate(path, loc), ".".join(map(str, loc)), message))

    for i, o in enumerate(scenario.erp.orders):
        if o.product not in products:
            bad(("erp", "orders", i, "product"), f"no product {o.product!r} in the plant model")
    for i, g in enumerate(scenario.erp.generate):
        if g.product not in products:
            bad(("erp", "generate", i, "product"), f"no product {g.product!r} in the plant model")
    for i, p in enumerate(scenario.people):
        if p.id not in people:
            bad(("people", i, "id"), f"no person {p.id!r} in the plant model's operators")
    for i, e in enumerate(scenario.timeline):
        wu = getattr(e, "work_unit", None)
        if wu is not None and wu not in units:
            bad(("timeline", i, "work_unit"), f"no work unit {wu!r} in the plant model")
        lot = getattr(e, "lot", None)
        if lot is not None and lot not in lots:
            bad(("timeline", i, "lot"), f"no material lot {lot!r} in the plant model")
        person = getattr(e, "person", None)
        if person is not None and person not in people:
            bad(("timeline", i, "person"), f"no person {person!r} in the plant model")
        order = getattr(e, "order", None)
        if order is not None and order not in orders:
            bad(("timeline", i, "order"), f"no job order {order!r} in the order stream")
        seg = getattr(e, "operation", None)
        if seg is not None and order in orders:
            product = products.get(orders[order])
            if product is not None and seg not in {s.id for s in product.segments}:
                bad(("timeline", i, "operation"), f"product {product.id} has no segment {seg!r}")
        if (
            isinstance(e, ProcessDrift)
            and wu in units
            and e.value not in {pv.name for pv in plant.work_unit(wu).process_values}
        ):
            bad(("timeline", i, "value"), f"work unit {wu} has no process value {e.value!r}")
    for i, x in enumerate(scenario.expectations):
        if isinstance(x, OeeWithin | ThroughputWithin) and x.line and x.line not in lines:
            bad(("expectations", i, "line"), f"no line {x.line!r} in the plant model")
        if isinstance(x, OeeWithin) and x.work_unit and x.work_unit not in units:
            bad(("expectations", i, "work_unit"), f"no work unit {x.work_unit!r}")
        if isinstance(x, LotInState) and x.lot not in lots:
            bad(("expectations", i, "lot"), f"no material lot {x.lot!r} in the plant model")
    return out


def scenario_orders(scenario: Scenario, plant: PlantModel) -> list[OrderRequest]:
    """The whole ERP order stream of a run, sorted by release time: the plant model's own
    job orders and generators (drawn exactly as the engine would draw them for this seed),
    then the scenario's."""
    out = []
    if scenario.erp.plant_orders:
        for j in plant.order_stream.job_orders:
            out.append(OrderRequest(j.id, j.product, j.quantity, j.release, j.due, j.priority))
        root = root_seed(scenario.seed)
        for gen in plant.order_stream.generators:
            rng = substream(root, f"orders/{gen.prefix}")
            gap = sampler(gen.interarrival, rng, duration=True)
            qty = sampler(gen.quantity, rng, duration=True)
            products = list(gen.product_mix)
            weights = np.asarray([gen.product_mix[p] for p in products], dtype=float)
            choice = rng.choice(len(products), size=gen.count, p=weights / weights.sum())
            t = gen.first_release
            for n in range(gen.count):
                out.append(
                    OrderRequest(
                        f"{gen.prefix}-{n + 1:04d}",
                        products[int(choice[n])],
                        max(1, round(qty())),
                        t,
                        t + gen.due_after,
                    )
                )
                t += gap()
    for o in scenario.erp.expand():
        out.append(OrderRequest(o.id, o.product, o.quantity, o.release_at, o.due, o.priority))
    return sorted(out, key=lambda o: (o.release_at, o.id))
