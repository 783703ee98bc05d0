"""Checks that make hostile YAML files fail fast with ``file:line: field: message``
(issue 21, item 6), before anything builds data from them.

- A file that is not UTF-8 text (a binary given by mistake or on purpose) is named with
  the line and byte of the first bad byte, instead of a ``UnicodeDecodeError``.
- Aliases (``*name``) share one node in the composed tree, so a few kilobytes can stand
  for billions of nodes ("billion laughs"): anything that walks the data would hang. The
  expanded size of the tree is computed once per node (memoised, linear in the file) and
  refused past :data:`MAX_EXPANDED_NODES`; an alias that contains itself is refused.
- A key written twice in one mapping is refused: YAML says keys are unique, and PyYAML
  silently keeps the last one, so a scenario's second ``expect:`` would quietly replace
  the first.
- Nesting past :data:`MAX_DEPTH` is refused (the composer recurses).
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

#: Largest file read (bytes): far above the reference plant (~100 KB).
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Largest data a document may stand for once its aliases are expanded (nodes).
MAX_EXPANDED_NODES = 1_000_000
#: Deepest nesting of mappings and sequences.
MAX_DEPTH = 200


@dataclass(frozen=True)
class Hostile:
    """One reason the file is refused: where (1-based line, column) and the field."""

    line: int
    column: int
    field: str
    message: str


def decode(raw: bytes) -> str | Hostile:
    """``raw`` as UTF-8 text, or why it is not text."""
    if len(raw) > MAX_FILE_BYTES:
        return Hostile(1, 1, "(file)", f"larger than {MAX_FILE_BYTES} bytes: not a plant file")
    nul = raw.find(b"\x00")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start if nul < 0 else min(nul, exc.start)
        return _binary(raw, offset)
    if nul >= 0:
        return _binary(raw, nul)
    return text


def _binary(raw: bytes, offset: int) -> Hostile:
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return Hostile(
        line,
        column,
        "(file)",
        f"not UTF-8 text (byte 0x{raw[offset]:02x} at offset {offset}): a binary file?",
    )


def _field(path: tuple[str, ...]) -> str:
    return ".".join(path) or "(document)"


def check_tree(root: yaml.Node | None) -> Hostile | None:
    """The first hostile construct of the composed tree ``root``, if any."""
    if root is None:
        return None
    sizes: dict[int, int] = {}
    # Iterative depth-first walk (post-order for sizes); a node on the current path
    # reached again is a recursive alias.
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str, ...], bool]] = [(root, (), False)]
    while stack:
        node, path, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size = 1 + sum(sizes[id(c)] for c in _children(node))
            if size > MAX_EXPANDED_NODES:
                mark = node.start_mark
                return Hostile(
                    mark.line + 1,
                    mark.column + 1,
                    _field(path),
                    f"aliases expand this to over {MAX_EXPANDED_NODES:,} values "
                    "(a 'billion laughs' document?)",
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue  # an alias of a node already measured
        if key in on_path:
            mark = node.start_mark
            return Hostile(mark.line + 1, mark.column + 1, _field(path), "an alias contains itself")
        if len(path) > MAX_DEPTH:
            mark = node.start_mark
            return Hostile(
                mark.line + 1, mark.column + 1, _field(path[:3]) + "...", "nested too deeply"
            )
        on_path.add(key)
        stack.append((node, path, True))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    name = key_node.value
                    if name in seen and key_node.tag != "tag:yaml.org,2002:merge":
                        return Hostile(
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                            _field((*path, name)),
                            f"duplicate key (first written at line {seen[name]}); "
                            "the last would silently win",
                        )
                    seen[name] = key_node.start_mark.line + 1
                else:
                    name = "(key)"
                stack.append((key_node, (*path, name), False))
                stack.append((value_node, (*path, name), False))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                stack.append((item, (*path, str(index)), False))
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
