"""plant_models: plant definitions (YAML) and their schema (pydantic v2).

``load_plant_model(path)`` reads and validates one file; ``PlantModelError`` lists every
problem with file, line, column and field path. The shipped models are
``bottling_line``, ``tablet_line`` and ``reference_plant``.
"""

from plant_models.distributions import Distribution
from plant_models.durations import parse_duration
from plant_models.loader import (
    SHIPPED_DIR,
    SHIPPED_MODELS,
    PlantModelError,
    Problem,
    load_plant_model,
    parse_plant_model,
)
from plant_models.schema import PlantModel

__all__ = [
    "SHIPPED_DIR",
    "SHIPPED_MODELS",
    "Distribution",
    "PlantModel",
    "PlantModelError",
    "Problem",
    "load_plant_model",
    "parse_duration",
    "parse_plant_model",
]
