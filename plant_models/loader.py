"""Load a plant model from YAML with errors that point at the file, line and field.

The YAML is composed into nodes first (``yaml.compose``) so that every value keeps its
position; pydantic's error locations are then mapped back to those positions::

    bottling_line.yaml:42:7: lines[0].work_units[2].cycle_time.mean: Input should be greater than 0

One line per problem; structural problems (types, unknown keys, missing fields) first,
then cross-reference problems (a product on a line that does not exist...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from plant_models.references import reference_problems
from plant_models.schema import Loc, PlantModel, format_loc
from plant_models.yaml_guard import check_tree, decode

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~5x faster

SHIPPED_DIR = Path(__file__).resolve().parent
SHIPPED_MODELS = (
    "bottling_line",
    "tablet_line",
    "reference_plant",
    "paint_shop",
    "mixing_plant",
    "lamp_assembly",
    "bottling_parallel_cappers",
    "packing_split",
)


@dataclass(frozen=True)
class Problem:
    """One problem in a plant model file."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        if self.line == 0:  # the file itself (missing, unreadable)
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"


class PlantModelError(ValueError):
    """A plant model file could not be read or is invalid; ``problems`` lists why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class _Marks:
    value: dict[Loc, tuple[int, int]]
    key: dict[Loc, tuple[int, int]]


def _walk(node: yaml.Node, loc: Loc, marks: _Marks) -> None:
    marks.value[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*loc, key)
            marks.key[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(value_node, child, marks)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), marks)


def _data_path(data: Any, loc: tuple[Any, ...]) -> Loc:
    """Drop pydantic's union tags from ``loc`` by following the actual data."""
    path: list[str | int] = []
    current = data
    for i, part in enumerate(loc):
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        ):
            path.append(part)
            current = current[part]
        elif (
            i == len(loc) - 1
            and isinstance(part, str | int)
            and not (isinstance(current, dict) and current.get("kind") == part)
        ):
            path.append(part)  # a missing field: name it
        # else: a union tag (e.g. "exponential", "function-before[...]"): not in the file
    return tuple(path)


def _position(marks: _Marks, path: Loc, prefer_key: bool) -> tuple[int, int]:
    if prefer_key and path in marks.key:
        return marks.key[path]
    probe = path
    while probe:
        if probe in marks.value:
            return marks.value[probe]
        probe = probe[:-1]
    return marks.value.get((), (1, 1))


def parse_plant_model(text: str, name: str = "<string>") -> PlantModel:
    """Validate YAML ``text`` as a plant model; ``name`` is used in error messages."""
    loader = _Loader(text)
    try:
        # One parse: compose the node tree (with marks), then build the data from it.
        node = loader.get_single_node()
        # Hostile constructs (billion laughs, duplicate keys) before any data is built.
        hostile = check_tree(node)
        if hostile is not None:
            raise PlantModelError(
                [Problem(name, hostile.line, hostile.column, hostile.field, hostile.message)]
            )
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise PlantModelError(
            [Problem(name, 1, 1, "(document)", "not valid YAML: nested too deeply")]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise PlantModelError(
            [Problem(name, line, col, "(document)", f"not valid YAML: {exc.problem or exc}")]
        ) from None
    except yaml.YAMLError as exc:
        raise PlantModelError(
            [Problem(name, 1, 1, "(document)", f"not valid YAML: {exc}")]
        ) from None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        raise PlantModelError(
            [Problem(name, 1, 1, "(document)", "expected a mapping with plant: and lines:")]
        )
    marks = _Marks({}, {})
    _walk(node, (), marks)
    try:
        model = PlantModel.model_validate(data, context={"defer_references": True})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            path = _data_path(data, tuple(err["loc"]))
            line, col = _position(marks, path, prefer_key=err["type"] == "extra_forbidden")
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                message = "unknown field (not part of the plant model schema)"
            elif err["type"] == "missing":
                message = "field required"
            problems.append(Problem(name, line, col, format_loc(path), message))
        raise PlantModelError(problems) from None
    ref = reference_problems(model)
    if ref:
        problems = []
        for loc, message in ref:
            path = _data_path(data, loc)
            line, col = _position(marks, path, prefer_key=False)
            problems.append(Problem(name, line, col, format_loc(loc), message))
        raise PlantModelError(problems)
    return model


def load_plant_model(path: str | Path) -> PlantModel:
    """Read and validate the plant model at ``path``.

    A bare name of a shipped model (``bottling_line``) is found in ``plant_models/``.
    Raises ``PlantModelError`` (one line per problem) when the file is missing or invalid.
    """
    p = resolve_model_path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        shipped = ", ".join(SHIPPED_MODELS)
        message = f"cannot read: {exc.strerror} (shipped models: {shipped})"
        raise PlantModelError([Problem(str(path), 0, 0, "", message)]) from None
    text = decode(raw)
    if not isinstance(text, str):
        raise PlantModelError([Problem(p.name, text.line, text.column, text.field, text.message)])
    return parse_plant_model(text, name=p.name)


def resolve_model_path(path: str | Path) -> Path:
    """``path`` itself if it exists, else the shipped model of that name."""
    p = Path(path)
    if p.exists():
        return p
    name = p.name.removesuffix(".yaml").removesuffix(".yml")
    if str(p) == p.name and name in SHIPPED_MODELS:
        return SHIPPED_DIR / f"{name}.yaml"
    return p
