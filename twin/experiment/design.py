"""An experiment design: plant-model fields x values (full factorial) x replications.

A design is YAML, validated like every other file of the project (``file:line: field:
message``, one line per problem)::

    plant: bottling_line          # a plant model file (relative to the design) or a shipped name
    until: 8h
    warmup: 1h                    # cut from every KPI (the empty line at the start)
    replications: 10
    seed: 1
    kpis: ["line.*.throughput_per_hour", "line.*.mean_wip"]   # fnmatch patterns
    parameters:
      - name: buffer 1
        path: lines[BTL1].buffers[BTL1-BUF1].capacity
        values: [10, 60, 400]
      - path: lines[BTL1].work_units[BTL1-FILLER].failures[valve jam].time_to_failure.mean
        values: [1h, 2h, 4h]

A ``path`` names any field of the plant model as it is written in the plant's YAML: a
list item by its ``code``, ``id`` or ``name`` (``lines[BTL1]``) or by its index
(``failures[0]``). Values are written as in the plant model (``2h``, a distribution
mapping, a whole list: ``operators`` replaced by a shorter crew). Every cell of the design
is validated as a plant model before anything runs; a value that makes the plant invalid
is reported at the line of that value in the design.

Cells are the full factorial of the parameters' values, in the order written, the last
parameter varying fastest; cell ``k`` replication ``r`` runs with
``SeedSequence(seed, spawn_key=(k, r))`` (or ``(r,)`` for every cell with
``common_random_numbers``), so any cell reruns alone, anywhere, bit for bit.
"""

from __future__ import annotations

import copy
import fnmatch
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from plant_models import PlantModel, PlantModelError, load_plant_model
from plant_models.durations import Duration
from plant_models.loader import resolve_model_path
from plant_models.references import reference_problems
from plant_models.scenario_yaml import DocumentError, FieldProblem, load_document, locate
from plant_models.schema import format_loc

#: KPIs reported when the design names none: every line's KPIs.
DEFAULT_KPIS = ("line.*",)

#: Cells x replications above this are refused (a typo of an extra zero).
MAX_RUNS = 100_000


class Parameter(BaseModel):
    """One plant-model field and the values it takes."""

    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(min_length=1)]
    values: Annotated[list[Any], Field(min_length=1)]
    name: str | None = None
    labels: list[str] | None = None

    @model_validator(mode="after")
    def _labels(self) -> Parameter:
        if self.labels is not None and len(self.labels) != len(self.values):
            raise ValueError(f"labels: {len(self.labels)} given for {len(self.values)} values")
        return self

    @property
    def label(self) -> str:
        return self.name or self.path

    def value_label(self, index: int) -> str:
        """How value ``index`` is shown in tables and plots."""
        if self.labels is not None:
            return self.labels[index]
        value = self.values[index]
        if isinstance(value, str | int | float | bool):
            return str(value)
        return f"value {index + 1}"


class DesignSpec(BaseModel):
    """The design file as written."""

    model_config = ConfigDict(extra="forbid")

    plant: Annotated[str, Field(min_length=1)]
    until: Annotated[Duration, Field(gt=0)]
    warmup: Annotated[Duration, Field(ge=0)] = 0.0
    replications: Annotated[int, Field(ge=2, le=10_000)]
    seed: Annotated[int, Field(ge=0)] = 1
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    common_random_numbers: bool = False
    kpis: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_KPIS)
    )
    parameters: Annotated[list[Parameter], Field(min_length=1)]

    @model_validator(mode="after")
    def _window(self) -> DesignSpec:
        if self.warmup >= self.until:
            raise ValueError(f"warmup ({self.warmup:g} s) must be shorter than until")
        return self


@dataclass(frozen=True)
class Cell:
    """One combination of parameter values: ``index`` in the design, ``choice`` the index
    of each parameter's value, ``model`` the validated plant model."""

    index: int
    choice: tuple[int, ...]
    model: PlantModel


@dataclass(frozen=True)
class Design:
    """A validated design: the spec, where it came from, and every cell's plant model."""

    spec: DesignSpec
    source: str
    cells: tuple[Cell, ...]

    @property
    def parameters(self) -> list[Parameter]:
        return self.spec.parameters

    def values(self, cell: Cell) -> dict[str, Any]:
        """``{parameter label: value}`` of ``cell``, as written in the design."""
        return {p.label: p.values[i] for p, i in zip(self.parameters, cell.choice, strict=True)}

    def value_labels(self, cell: Cell) -> dict[str, str]:
        return {
            p.label: p.value_label(i) for p, i in zip(self.parameters, cell.choice, strict=True)
        }

    def seed_sequence(self, cell: int, replication: int) -> np.random.SeedSequence:
        """The seed of replication ``replication`` of cell ``cell`` (the same wherever it runs)."""
        key = (replication,) if self.spec.common_random_numbers else (cell, replication)
        return np.random.SeedSequence(self.spec.seed, spawn_key=key)

    def wants(self, kpi: str) -> bool:
        """Whether the design reports ``kpi``."""
        return any(fnmatch.fnmatchcase(kpi, pattern) for pattern in self.spec.kpis)


class DesignError(DocumentError):
    """The design (or a cell of it) is invalid; ``problems`` says where, one per line."""


_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")
_KEYS = ("code", "id", "name")


def parse_path(path: str) -> list[str | int | tuple[str]]:
    """``lines[BTL1].buffers[0].capacity`` -> ``["lines", ("BTL1",), "buffers", 0, "capacity"]``
    (a bracketed key that is not a number is a tuple: match on code, id or name)."""
    parts: list[str | int | tuple[str]] = []
    pos = 0
    text = path.strip()
    while pos < len(text):
        if text[pos] == "." and parts:
            pos += 1
        match = _SEGMENT.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot read the path at {text[pos:]!r}")
        field, key = match.groups()
        if field is not None:
            parts.append(field.strip())
        elif key is not None:
            key = key.strip()
            if not key:
                raise ValueError("empty [] in the path")
            parts.append(int(key) if key.lstrip("-").isdigit() else (key,))
        pos = match.end()
    if not parts or not isinstance(parts[0], str):
        raise ValueError("a path starts with a field name, e.g. lines[BTL1].buffers[0].capacity")
    return parts


def _step(current: Any, part: str | int | tuple[str], walked: str) -> tuple[Any, str | int]:
    """The child of ``current`` at ``part`` and its key in ``current``."""
    if isinstance(part, str):
        if not isinstance(current, dict):
            raise ValueError(f"{walked or 'the plant'} is not a mapping: no field {part!r}")
        return current.get(part), part
    if not isinstance(current, list):
        raise ValueError(f"{walked} is not a list: cannot take [{part}]")
    if isinstance(part, int):
        if not -len(current) <= part < len(current):
            raise ValueError(f"{walked} has {len(current)} items: no [{part}]")
        return current[part], part % len(current)
    (key,) = part
    for index, item in enumerate(current):
        if isinstance(item, dict) and any(str(item.get(k)) == key for k in _KEYS):
            return item, index
    raise ValueError(f"{walked} has no item with code, id or name {key!r}")


def set_field(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` of the plant data ``data`` (as read from YAML) to ``value``, in place.

    The last field may be missing (a default the plant file leaves out); every list item
    and every mapping on the way must exist.
    """
    parts = parse_path(path)
    current: Any = data
    walked = ""
    for part in parts[:-1]:
        child, _key = _step(current, part, walked)
        walked += (
            f".{part}"
            if isinstance(part, str)
            else f"[{part if isinstance(part, int) else part[0]}]"
        )
        walked = walked.lstrip(".")
        if child is None:
            raise ValueError(f"{walked} is not in the plant model file")
        current = child
    last = parts[-1]
    if isinstance(last, str):
        if not isinstance(current, dict):
            raise ValueError(f"{walked or 'the plant'} is not a mapping: no field {last!r}")
        current[last] = copy.deepcopy(value)
        return
    _child, key = _step(current, last, walked)
    current[key] = copy.deepcopy(value)


def _validate_plant(data: dict[str, Any]) -> list[str]:
    """Why ``data`` is not a valid plant model (empty when it is)."""
    try:
        model = PlantModel.model_validate(data, context={"defer_references": True})
    except ValidationError as exc:
        return [f"{format_loc(tuple(e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
    return [f"{format_loc(loc)}: {message}" for loc, message in reference_problems(model)]


def load_design(path: str | Path) -> Design:
    """Read and validate the design at ``path`` and every cell it makes.

    Raises ``DesignError`` (``file:line: field: message``) for the design itself, and
    ``PlantModelError`` for the plant model it names.
    """
    path = Path(path)
    try:
        spec = load_document(path, DesignSpec)
    except DocumentError as exc:
        raise DesignError(exc.problems) from None
    name = str(path)
    plant_path = path.parent / spec.plant
    if not plant_path.exists():
        plant_path = resolve_model_path(spec.plant)
    load_plant_model(plant_path)  # PlantModelError names the plant file's lines
    raw = yaml.safe_load(plant_path.read_text(encoding="utf-8"))
    problems: list[FieldProblem] = []
    for p_index, parameter in enumerate(spec.parameters):
        for v_index, value in enumerate(parameter.values):
            loc: tuple[int | str, ...] = ("parameters", p_index, "values", v_index)
            data = copy.deepcopy(raw)
            try:
                set_field(data, parameter.path, value)
            except ValueError as exc:
                problems.append(
                    FieldProblem(
                        name,
                        locate(path, ("parameters", p_index, "path")),
                        f"parameters[{p_index}].path",
                        str(exc),
                    )
                )
                break
            for why in _validate_plant(data):
                problems.append(
                    FieldProblem(
                        name,
                        locate(path, loc),
                        format_loc(loc),
                        f"{parameter.path} = {value!r} makes the plant invalid: {why}",
                    )
                )
    runs = spec.replications * int(np.prod([len(p.values) for p in spec.parameters]))
    if runs > MAX_RUNS:
        problems.append(
            FieldProblem(
                name,
                locate(path, ("parameters",)),
                "parameters",
                f"{runs:,} runs (cells x replications): more than {MAX_RUNS:,}",
            )
        )
    if problems:
        raise DesignError(problems)
    cells = []
    choices = itertools.product(*(range(len(p.values)) for p in spec.parameters))
    for index, choice in enumerate(choices):
        data = copy.deepcopy(raw)
        for parameter, v_index in zip(spec.parameters, choice, strict=True):
            set_field(data, parameter.path, parameter.values[v_index])
        try:
            model = PlantModel.model_validate(data)
        except ValidationError as exc:  # a combination invalid although each value is valid
            labels = ", ".join(
                f"{p.label}={p.value_label(i)}"
                for p, i in zip(spec.parameters, choice, strict=True)
            )
            first = exc.errors(include_url=False)[0]
            problems.append(
                FieldProblem(
                    name,
                    locate(path, ("parameters",)),
                    "parameters",
                    f"cell {index} ({labels}) makes the plant invalid: {first['msg']}",
                )
            )
            continue
        cells.append(Cell(index, tuple(choice), model))
    if problems:
        raise DesignError(problems)
    return Design(spec, name, tuple(cells))


__all__ = [
    "Cell",
    "Design",
    "DesignError",
    "DesignSpec",
    "Parameter",
    "PlantModelError",
    "load_design",
    "parse_path",
    "set_field",
]
