"""Small plant models for the twin's tests, built as data (validated like YAML)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from plant_models.distributions import Distribution
from plant_models.schema import PlantModel

_DISTRIBUTION: TypeAdapter[Distribution] = TypeAdapter(Distribution)


def work_unit(code: str, cycle: Any, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "equipment_class": extra.pop("equipment_class", "Station"),
        "cycle_time": cycle,
        **extra,
    }


def exponential(mean: float) -> dict[str, Any]:
    return {"kind": "exponential", "mean": mean}


def plant(
    work_units: list[dict[str, Any]],
    buffers: list[tuple[str, str, int]] | None = None,
    *,
    arrivals: dict[str, Any] | None = None,
    continuous: bool = True,
    **top: Any,
) -> PlantModel:
    """One line ``L1`` of ``work_units``; ``buffers`` as (upstream, downstream, capacity)."""
    line: dict[str, Any] = {
        "code": "L1",
        "work_units": work_units,
        "buffers": [
            {"code": f"B{i + 1}", "upstream": u, "downstream": d, "capacity": c}
            for i, (u, d, c) in enumerate(buffers or [])
        ],
    }
    if arrivals is not None:
        line["arrivals"] = arrivals
    if continuous:
        line["continuous_product"] = "P"
    data: dict[str, Any] = {
        "plant": {"code": "TEST"},
        "lines": [line],
        "materials": [{"id": "FG", "unit": "ea"}],
        "products": [
            {
                "id": "P",
                "material": "FG",
                "line": "L1",
                "segments": [
                    {
                        "id": "S1",
                        "equipment_class": work_units[0].get("equipment_class", "Station"),
                        # The routing may not promise less than the machine does.
                        "standard_run_time": min(
                            1.0, _DISTRIBUTION.validate_python(work_units[0]["cycle_time"]).mean()
                        ),
                    }
                ],
            }
        ],
    }
    data.update(top)
    return PlantModel.model_validate(data)
