"""The plant model's master data, loaded into Tryton through its JSON-RPC only.

ISA-95 -> Tryton:

- plant -> ``company.company`` (and its party), currency EUR.
- material definition -> ``product.template`` + ``product.product`` (code = material id);
  one unit of measure per plant unit, rounding 1e-7 (a case is 0.0833333 of a bottle).
- material lot -> ``stock.lot`` (number = lot id), its quantity received into the
  warehouse's storage (a done move from the supplier location).
- product (what a line makes) -> ``production.bom`` (inputs: every segment's materials
  per unit; output: the product's material) and ``production.routing``.
- operation segment -> ``production.routing.operation`` named ``<product>/<segment>``,
  its equipment class as work center category; a routing step in segment order.
- line -> ``production.work.center`` (productions run on it); equipment class / work
  unit -> ``production.work.center.category`` / a child work center (name = its code).
- operator -> ``party.party`` (code = person id) + ``company.employee``; every employee is
  one of the admin user's, so the adapter acts as any of them (``context.employee``).
- inspection characteristic -> a ``quality.control`` ``<product>/<characteristic>`` of
  the product's material with one float point, LSL/USL as its tolerances.

What Tryton has no field for is not loaded and is said so by the adapter: lot expiry and
status (``stock_lot`` has neither without ``stock_lot_sled``), operator skills and
certifications, work unit qualification and calibration.

Loading twice changes nothing: every record is looked up by its code or name first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mestwin_tryton.rpc import TrytonRpc
from plant_models.schema import MaterialLot, PlantModel


@dataclass
class MasterData:
    """Ids of what was loaded, by the plant model's codes."""

    company: int = 0
    currency: int = 0
    warehouse: int = 0
    storage: int = 0
    production_location: int = 0
    lost_found: int = 0
    supplier: int = 0
    products: dict[str, int] = field(default_factory=dict)
    """material id -> product.product"""
    units: dict[str, int] = field(default_factory=dict)
    """material id -> product.uom"""
    boms: dict[str, int] = field(default_factory=dict)
    """plant product id -> production.bom"""
    routings: dict[str, int] = field(default_factory=dict)
    operations: dict[tuple[str, str], int] = field(default_factory=dict)
    """(plant product, segment) -> production.routing.operation"""
    work_centers: dict[str, int] = field(default_factory=dict)
    """work unit code -> production.work.center (a child of its line's)"""
    lines: dict[str, int] = field(default_factory=dict)
    """line code -> production.work.center"""
    lots: dict[str, int] = field(default_factory=dict)
    employees: dict[str, int] = field(default_factory=dict)
    controls: dict[str, int] = field(default_factory=dict)
    """``<plant product>/<characteristic>`` -> quality.control"""


def _one(rpc: TrytonRpc, model: str, domain: list[Any], values: dict[str, Any]) -> int:
    found = rpc.search(model, domain, limit=1)
    if found:
        return found[0]
    return rpc.create(model, [values])[0]


def _location(rpc: TrytonRpc, kind: str) -> int:
    found = rpc.search("stock.location", [("type", "=", kind)], limit=1, order=[("id", "ASC")])
    if not found:
        raise LookupError(f"Tryton has no stock location of type {kind}")
    return found[0]


def load_plant(rpc: TrytonRpc, plant: PlantModel) -> MasterData:
    """Load ``plant`` into the database ``rpc`` is logged in to (as its administrator)."""
    md = MasterData()
    currency = _one(
        rpc,
        "currency.currency",
        [("code", "=", "EUR")],
        {"name": "Euro", "code": "EUR", "symbol": "EUR", "rounding": Decimal("0.01"), "digits": 2},
    )
    company_name = plant.plant.name or plant.plant.code
    companies = rpc.search("company.company", [("party.name", "=", company_name)], limit=1)
    if companies:
        md.company = companies[0]
    else:
        party = rpc.create("party.party", [{"name": company_name}])[0]
        md.company = rpc.create("company.company", [{"party": party, "currency": currency}])[0]
    md.currency = currency
    rpc.write("res.user", [rpc.user_id], {"companies": [("add", [md.company])]})
    rpc.write("res.user", [rpc.user_id], {"company": md.company})
    rpc.context["company"] = md.company

    # the locations stock and production create (their XML ids are not readable over RPC)
    md.warehouse = _location(rpc, "warehouse")
    md.supplier = _location(rpc, "supplier")
    md.lost_found = _location(rpc, "lost_found")
    md.production_location = _location(rpc, "production")
    md.storage = rpc.read("stock.location", [md.warehouse], ["storage_location"])[0][
        "storage_location"
    ]
    warehouse = rpc.read("stock.location", [md.warehouse], ["production_location"])[0]
    if not warehouse.get("production_location"):
        rpc.write("stock.location", [md.warehouse], {"production_location": md.production_location})
    # scrap is a production output into lost and found, Tryton's place for waste
    rpc.write("stock.location", [md.lost_found], {"waste_warehouses": [("add", [md.warehouse])]})

    # units: one category and unit per plant unit, fine enough for fractions of a case
    uoms: dict[str, int] = {}
    for material in plant.materials:
        unit = material.unit
        if unit not in uoms:
            category = _one(
                rpc,
                "product.uom.category",
                [("name", "=", f"plant {unit}")],
                {"name": f"plant {unit}"},
            )
            uoms[unit] = _one(
                rpc,
                "product.uom",
                [("category", "=", category), ("symbol", "=", unit)],
                {
                    "name": unit,
                    "symbol": unit,
                    "category": category,
                    "factor": 1.0,
                    "rate": 1.0,
                    "rounding": 1e-7,
                    "digits": 7,
                },
            )
    finished = {p.material for p in plant.products}
    for material in plant.materials:
        md.units[material.id] = uoms[material.unit]
        found = rpc.search("product.product", [("code", "=", material.id)], limit=1)
        if found:
            md.products[material.id] = found[0]
            continue
        template = rpc.create(
            "product.template",
            [
                {
                    "name": material.name or material.id,
                    "code": material.id,
                    "type": "goods",
                    "default_uom": uoms[material.unit],
                    "producible": material.id in finished,
                    "list_price": Decimal(0),
                    "products": [("create", [{}])],
                }
            ],
        )[0]
        md.products[material.id] = rpc.search(
            "product.product", [("template", "=", template)], limit=1
        )[0]

    for line in plant.lines:
        # the line is the work center productions run on; its work units are children
        md.lines[line.code] = _one(
            rpc,
            "production.work.center",
            [("name", "=", line.code)],
            {
                "name": line.code,
                "warehouse": md.warehouse,
                "company": md.company,
                "cost_price": Decimal(0),
                "cost_method": "cycle",
            },
        )
        for wu in line.work_units:
            category = _one(
                rpc,
                "production.work.center.category",
                [("name", "=", wu.equipment_class)],
                {"name": wu.equipment_class},
            )
            md.work_centers[wu.code] = _one(
                rpc,
                "production.work.center",
                [("name", "=", wu.code)],
                {
                    "name": wu.code,
                    "parent": md.lines[line.code],
                    "category": category,
                    "warehouse": md.warehouse,
                    "company": md.company,
                    "cost_price": Decimal(0),
                    "cost_method": "cycle",
                },
            )

    for product in plant.products:
        fg = md.products[product.material]
        steps = []
        for seq, segment in enumerate(product.segments, start=1):
            category = _one(
                rpc,
                "production.work.center.category",
                [("name", "=", segment.equipment_class)],
                {"name": segment.equipment_class},
            )
            operation = _one(
                rpc,
                "production.routing.operation",
                [("name", "=", f"{product.id}/{segment.id}")],
                {
                    "name": f"{product.id}/{segment.id}",
                    "work_center_category": category,
                    "timesheet_available": True,
                },
            )
            md.operations[(product.id, segment.id)] = operation
            steps.append({"operation": operation, "sequence": seq})
        inputs: dict[str, float] = {}
        for segment in product.segments:
            for req in segment.materials:
                inputs[req.material] = inputs.get(req.material, 0.0) + req.quantity_per_unit
        md.boms[product.id] = _one(
            rpc,
            "production.bom",
            [("name", "=", product.id)],
            {
                "name": product.id,
                "inputs": [
                    (
                        "create",
                        [
                            {"product": md.products[m], "quantity": q, "unit": md.units[m]}
                            for m, q in inputs.items()
                        ],
                    )
                ],
                "outputs": [
                    (
                        "create",
                        [{"product": fg, "quantity": 1.0, "unit": md.units[product.material]}],
                    )
                ],
            },
        )
        md.routings[product.id] = _one(
            rpc,
            "production.routing",
            [("name", "=", product.id)],
            {
                "name": product.id,
                "steps": [("create", steps)],
                "boms": [("add", [md.boms[product.id]])],
            },
        )
        _one(
            rpc,
            "product.product-production.bom",
            [("product", "=", fg), ("bom", "=", md.boms[product.id])],
            {"product": fg, "bom": md.boms[product.id], "routing": md.routings[product.id]},
        )
        # One control per characteristic, each sample an inspection of the production.
        # No operation requires it (the plant samples on its own plan), but a failed
        # inspection opens an alert, and Tryton finishes no production with an open one.
        for segment in product.segments:
            for c in segment.inspections:
                name = f"{product.id}/{c.name}"
                md.controls[name] = _one(
                    rpc,
                    "quality.control",
                    [("name", "=", name)],
                    {
                        "name": name,
                        "operations": [],
                        "frequency": 1.0,
                        "company": md.company,
                        "product": fg,
                        "points": [
                            (
                                "create",
                                [
                                    {
                                        "name": c.name,
                                        "string": f"{c.name} [{c.unit}]",
                                        "type_": "float",
                                        "tolerance_lower": c.lsl,
                                        "tolerance_upper": c.usl,
                                    }
                                ],
                            )
                        ],
                    },
                )

    # a material of unlimited supply is drawn from one bulk lot that never runs out
    bulk = [
        MaterialLot(id=f"{m.id}-BULK", material=m.id, quantity=1e9)
        for m in plant.materials
        if m.unlimited_supply
    ]
    for lot in [*plant.material_lots, *bulk]:
        product_id = md.products[lot.material]
        found = rpc.search("stock.lot", [("number", "=", lot.id)], limit=1)
        if found:
            md.lots[lot.id] = found[0]
            continue
        md.lots[lot.id] = rpc.create("stock.lot", [{"number": lot.id, "product": product_id}])[0]
        if lot.quantity > 0:
            move = rpc.create(
                "stock.move",
                [
                    {
                        "product": product_id,
                        "lot": md.lots[lot.id],
                        "quantity": lot.quantity,
                        "unit": md.units[lot.material],
                        "from_location": md.supplier,
                        "to_location": md.storage,
                        "company": md.company,
                        "unit_price": Decimal(0),
                        "currency": currency,
                    }
                ],
            )
            rpc.call("stock.move", "do", move)

    employee_ids = []
    for person in plant.operators:
        found = rpc.search("company.employee", [("party.code", "=", person.id)], limit=1)
        if found:
            md.employees[person.id] = found[0]
        else:
            party = rpc.create(
                "party.party", [{"name": person.name or person.id, "code": person.id}]
            )[0]
            md.employees[person.id] = rpc.create(
                "company.employee", [{"party": party, "company": md.company}]
            )[0]
        employee_ids.append(md.employees[person.id])
    if employee_ids:
        rpc.write("res.user", [rpc.user_id], {"employees": [("add", employee_ids)]})
    return md
