"""Helpers of the OPC UA end-to-end tests: a MES child process with a plant's equipment,
an integration API key, and the MES's recorded counts per work unit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select

from mes_core.client import MesClient
from mes_core.persistence.models import PlantEventRow
from mes_core.schemas.masterdata import MasterData
from plant_models.schema import PlantModel
from twin.scenario.mes_process import MesProcess

ADMIN_PASSWORD = "opcua-test-admin"


def master_data_of(plant: PlantModel) -> MasterData:
    """The plant's equipment hierarchy (site > line > work unit), materials and routings
    (one per product, named like it) as MES master data."""
    equipment: list[dict[str, Any]] = [{"code": plant.plant.code, "level": "site"}]
    for line in plant.lines:
        equipment.append({"code": line.code, "level": "line", "parent": plant.plant.code})
        equipment.extend(
            {
                "code": wu.code,
                "level": "work_unit",
                "parent": line.code,
                "equipment_class": wu.equipment_class,
            }
            for wu in line.work_units
        )
    materials = [{"code": m.id, "unit": m.unit} for m in plant.materials]
    routings = [
        {
            "code": p.id,
            "product": p.material,
            "segments": [
                {
                    "sequence": i + 1,
                    "name": seg.id,
                    "equipment_class": seg.equipment_class,
                    "pru_seconds": seg.standard_run_time,
                    "allow_partial": True,
                }
                for i, seg in enumerate(p.segments)
            ],
        }
        for p in plant.products
    ]
    return MasterData.model_validate(
        {"equipment": equipment, "materials": materials, "routings": routings}
    )


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the MES at {url} did not come up")


def start_mes(database_url: str, log_dir: Path) -> MesProcess:
    mes = MesProcess(database_url, log_dir / "mes.log", ADMIN_PASSWORD)
    mes.migrate()
    mes.start()
    wait_ready(mes.url)
    return mes


def integration_key(url: str, plant: PlantModel) -> str:
    """Load the plant's equipment (once) and make an API key for the connector."""
    with MesClient(url).login("admin", ADMIN_PASSWORD) as admin:
        known = {e.code for e in admin.list_equipment()}
        if plant.plant.code not in known:
            admin.load_master_data(master_data_of(plant))
        return admin.create_api_key(f"connector-{time.monotonic_ns()}", "integration").api_key


def mes_counts(database_url: str, source: str) -> dict[str, tuple[int, int]]:
    """(good, scrap) per work unit as the MES recorded them from ``source``."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    PlantEventRow.work_unit,
                    func.coalesce(func.sum(PlantEventRow.good), 0),
                    func.coalesce(func.sum(PlantEventRow.scrap), 0),
                )
                .where(PlantEventRow.source == source, PlantEventRow.kind == "count")
                .group_by(PlantEventRow.work_unit)
            ).all()
    finally:
        engine.dispose()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def mes_event_count(database_url: str, source: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            n = conn.execute(
                select(func.count())
                .select_from(PlantEventRow)
                .where(PlantEventRow.source == source)
            ).scalar_one()
    finally:
        engine.dispose()
    return int(n)
