"""Load a YAML document into a pydantic model, with errors that name file, line and field.

PyYAML's *composed* node tree keeps the position of every mapping key and value; after
pydantic has rejected the plain data, each error's ``loc`` path is walked back through
that tree to the line where the offending field (or the mapping that lacks it) is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from plant_models.yaml_guard import check_tree, decode

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with a document: where it is and what is wrong."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class DocumentError(ValueError):
    """A YAML document that cannot be read or does not match its schema.

    ``problems`` lists each problem with file, line (1-based) and dotted field path.
    """

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _child(node: yaml.Node, key: int | str) -> yaml.Node | None:
    """The child node at ``key`` (mapping key or sequence index), or None."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                return v
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int):
        return node.value[key] if 0 <= key < len(node.value) else None
    return None


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """Deepest line the path ``loc`` reaches in the node tree (1-based)."""
    if root is None:
        return 1
    node = root
    line = node.start_mark.line + 1
    for key in loc:
        child = _child(node, key)
        if child is None:
            # Discriminated unions add the tag name to the path: skip what is not a node.
            continue
        node = child
        line = node.start_mark.line + 1
    return line


def load_document(path: Path, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it as ``model``.

    Raises ``DocumentError`` naming file, line and field for unreadable files, YAML syntax
    errors and schema violations alike.
    """
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError([FieldProblem(name, 0, "(file)", exc.strerror or str(exc))]) from exc
    text = decode(raw)
    if not isinstance(text, str):
        raise DocumentError([FieldProblem(name, text.line, text.field, text.message)])
    return load_text(text, model, name=name)


def load_text(text: str, model: type[M], *, name: str = "<string>") -> M:
    """Validate YAML ``text`` as ``model``; ``name`` is used in error messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        # Hostile constructs (billion laughs, duplicate keys) before any data is built.
        hostile = check_tree(root)
        if hostile is not None:
            raise DocumentError([FieldProblem(name, hostile.line, hostile.field, hostile.message)])
        data: Any = yaml.safe_load(text)
    except RecursionError:
        raise DocumentError([FieldProblem(name, 1, "(yaml)", "nested too deeply")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise DocumentError(
            [FieldProblem(name, line, "(yaml)", f"{exc.problem or exc.context}")]
        ) from exc
    except yaml.YAMLError as exc:
        raise DocumentError([FieldProblem(name, 0, "(yaml)", str(exc))]) from exc
    if not isinstance(data, dict):
        raise DocumentError([FieldProblem(name, 1, "(document)", "must be a mapping of fields")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            field = ".".join(str(p) for p in loc) or "(document)"
            problems.append(FieldProblem(name, _line_of(root, loc), field, err["msg"]))
        raise DocumentError(problems) from exc


def locate(path: Path, loc: tuple[int | str, ...]) -> int:
    """The line of field ``loc`` in the YAML file ``path`` (1 when it cannot be found)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return 1
    return _line_of(root, loc)
