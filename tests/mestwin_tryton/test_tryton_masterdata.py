"""The plant's master data reaches Tryton through its JSON-RPC, and reads back as the
plant model says (a real trytond on SQLite; ~15-30 s with the database template cached)."""

from __future__ import annotations

from typing import Any

import pytest

from plant_models.loader import load_plant_model


@pytest.fixture(scope="module")
def loaded(tryton_server: Any) -> tuple[Any, Any]:
    from mestwin_tryton.masterdata import load_plant

    rpc = tryton_server.rpc()
    plant = load_plant_model("bottling_line")
    md = load_plant(rpc, plant)
    return rpc, md


def test_products_boms_and_routings_follow_the_plant_model(loaded: tuple[Any, Any]) -> None:
    rpc, md = loaded
    plant = load_plant_model("bottling_line")
    codes = {r["code"] for r in rpc.search_read("product.product", [], ["code"])}
    assert {m.id for m in plant.materials} <= codes
    for product in plant.products:
        bom = rpc.read("production.bom", [md.boms[product.id]], ["inputs", "outputs"])[0]
        inputs = rpc.read("production.bom.input", bom["inputs"], ["product.code", "quantity"])
        want = {r.material: r.quantity_per_unit for s in product.segments for r in s.materials}
        assert {i["product."]["code"]: i["quantity"] for i in inputs} == pytest.approx(want)
        outputs = rpc.read("production.bom.output", bom["outputs"], ["product.code"])
        assert [o["product."]["code"] for o in outputs] == [product.material]
        routing = rpc.read("production.routing", [md.routings[product.id]], ["steps"])[0]
        steps = rpc.read(
            "production.routing.step",
            routing["steps"],
            ["sequence", "operation.name", "operation.work_center_category.name"],
        )
        steps.sort(key=lambda s: s["sequence"])
        assert [
            (s["operation."]["name"], s["operation."]["work_center_category."]["name"])
            for s in steps
        ] == [(f"{product.id}/{seg.id}", seg.equipment_class) for seg in product.segments]


def test_work_centers_lots_in_stock_and_employees(loaded: tuple[Any, Any]) -> None:
    rpc, md = loaded
    plant = load_plant_model("bottling_line")
    centers = rpc.search_read(
        "production.work.center", [("parent", "!=", None)], ["name", "category.name", "parent.name"]
    )
    assert {c["name"]: (c["category."]["name"], c["parent."]["name"]) for c in centers} == {
        wu.code: (wu.equipment_class, line.code) for line in plant.lines for wu in line.work_units
    }
    lots = rpc.call(
        "stock.lot",
        "search_read",
        [],
        0,
        None,
        None,
        ["number", "quantity"],
        context={"locations": [md.storage]},
    )
    bulk = {f"{m.id}-BULK": 1e9 for m in plant.materials if m.unlimited_supply}
    assert {lot["number"]: lot["quantity"] for lot in lots} == pytest.approx(
        {**{lot.id: lot.quantity for lot in plant.material_lots}, **bulk}
    )
    employees = rpc.search_read("company.employee", [], ["party.code"])
    assert {e["party."]["code"] for e in employees} == {o.id for o in plant.operators}


def test_loading_twice_changes_nothing(loaded: tuple[Any, Any]) -> None:
    from mestwin_tryton.masterdata import load_plant

    rpc, md = loaded
    before = {m: len(rpc.search(m, [])) for m in ("product.product", "stock.move", "stock.lot")}
    again = load_plant(rpc, load_plant_model("bottling_line"))
    assert again == md
    assert {m: len(rpc.search(m, [])) for m in before} == before
