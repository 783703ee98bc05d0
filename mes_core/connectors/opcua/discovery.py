"""Finding the work units on an OPC UA server: by the information model, or by a tag map.

**Browsing** (servers that follow the model, the twin among them): the object types that
are ``WorkUnitType`` or a subtype of it are found under ``BaseObjectType``; then the
``Objects`` folder is browsed breadth-first (a few levels deep, many nodes per Browse
request) for objects whose type definition is one of them. Each one's browse name is the
MES work unit code; its tags are its components of the same browse names as the model's,
its process values the variables in its ``ProcessValues`` folder, with the unit from
``EngineeringUnits`` (OPC 10000-8, 5.6.3) and the inspection characteristic from an
optional ``Characteristic`` property.

**Tag mapping** (a plain PLC that does not use the model): a YAML file names, per work
unit, the NodeId of each tag the connector needs; see ``TagMapping``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from asyncua import Client, ua
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mes_core.connectors.opcua.mapping import (
    NAMESPACE_URI,
    PROCESS_VALUES,
    SUBSCRIBED_TAGS,
    WORK_UNIT_TYPE,
)

log = logging.getLogger(__name__)

NodeId: Callable[..., ua.NodeId] = ua.NodeId  # accepts plain ints (asyncua annotates Int32)
MAX_DEPTH = 6
BROWSE_CHUNK = 500
METHOD_NAMES = ("StoreAndStart", "Stop", "Reset")


@dataclass
class ProcessValueBinding:
    name: str
    unit: str
    characteristic: str


@dataclass
class WorkUnitBinding:
    """One work unit as the connector sees it: its tags' NodeIds and its methods."""

    code: str
    line: str
    object: ua.NodeId | None
    tags: dict[str, ua.NodeId] = field(default_factory=dict)
    process_values: dict[ua.NodeId, ProcessValueBinding] = field(default_factory=dict)
    methods: dict[str, ua.NodeId] = field(default_factory=dict)


# --- browsing ----------------------------------------------------------------------------


async def _browse_many(
    client: Client,
    nodes: Sequence[ua.NodeId],
    reftype: int = ua.ObjectIds.HierarchicalReferences,
    node_class_mask: int = 0,
) -> list[list[ua.ReferenceDescription]]:
    """Forward references of many nodes, ``BROWSE_CHUNK`` per Browse request."""
    out: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(nodes), BROWSE_CHUNK):
        chunk = nodes[start : start + BROWSE_CHUNK]
        params = ua.BrowseParameters()
        params.View = ua.ViewDescription()
        params.RequestedMaxReferencesPerNode = ua.UInt32(0)
        params.NodesToBrowse = []
        for nodeid in chunk:
            desc = ua.BrowseDescription()
            desc.NodeId = nodeid
            desc.BrowseDirection = ua.BrowseDirection.Forward
            desc.ReferenceTypeId = NodeId(reftype)
            desc.IncludeSubtypes = True
            desc.NodeClassMask = ua.UInt32(node_class_mask)
            desc.ResultMask = ua.UInt32(ua.BrowseResultMask.All)
            params.NodesToBrowse.append(desc)
        results = await client.uaclient.browse(params)
        for result in results:
            refs = list(result.References)
            cont = result.ContinuationPoint
            while cont:
                more = await client.uaclient.browse_next(
                    ua.BrowseNextParameters(ContinuationPoints=[cont])
                )
                refs.extend(more[0].References)
                cont = more[0].ContinuationPoint
            out.append(refs)
    return out


async def _work_unit_types(client: Client, ns: int) -> set[ua.NodeId]:
    """``WorkUnitType`` of the model's namespace and all its subtypes."""
    base = NodeId(ua.ObjectIds.BaseObjectType)
    (children,) = await _browse_many(client, [base], ua.ObjectIds.HasSubtype)
    roots = [
        r.NodeId
        for r in children
        if r.BrowseName.Name == WORK_UNIT_TYPE and r.BrowseName.NamespaceIndex == ns
    ]
    found = set(roots)
    frontier = roots
    while frontier:
        subs = await _browse_many(client, frontier, ua.ObjectIds.HasSubtype)
        frontier = [r.NodeId for refs in subs for r in refs if r.NodeId not in found]
        found.update(frontier)
    return found


async def discover(client: Client) -> list[WorkUnitBinding]:
    """Every ``WorkUnitType`` instance under ``Objects``, bound to its tags."""
    try:
        ns = await client.get_namespace_index(NAMESPACE_URI)
    except ValueError:
        raise LookupError(
            f"the server has no namespace {NAMESPACE_URI}: it does not follow the "
            "mestwin information model (use a tag mapping, --mapping FILE)"
        ) from None
    types = await _work_unit_types(client, ns)
    if not types:
        raise LookupError(f"the server defines no {WORK_UNIT_TYPE} in {NAMESPACE_URI}")
    found: list[tuple[ua.NodeId, str, str]] = []  # (object, code, parent name)
    objects = NodeId(ua.ObjectIds.ObjectsFolder)
    frontier: list[tuple[ua.NodeId, str]] = [(objects, "")]
    seen = {objects, NodeId(ua.ObjectIds.Server)}
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        results = await _browse_many(
            client, [n for n, _ in frontier], node_class_mask=int(ua.NodeClass.Object)
        )
        nxt: list[tuple[ua.NodeId, str]] = []
        for (_, parent_name), refs in zip(frontier, results, strict=True):
            for ref in refs:
                if ref.NodeId in seen:
                    continue
                seen.add(ref.NodeId)
                if ref.TypeDefinition in types:
                    found.append((ref.NodeId, ref.BrowseName.Name, parent_name))
                else:
                    nxt.append((ref.NodeId, ref.BrowseName.Name))
        frontier = nxt
    if not found:
        return []
    bindings = [WorkUnitBinding(code=code, line=line, object=obj) for obj, code, line in found]
    children = await _browse_many(client, [b.object for b in bindings if b.object is not None])
    folders: list[tuple[WorkUnitBinding, ua.NodeId]] = []
    for binding, refs in zip(bindings, children, strict=True):
        for ref in refs:
            name = ref.BrowseName.Name
            if name in SUBSCRIBED_TAGS and ref.NodeClass == ua.NodeClass.Variable:
                binding.tags[name] = ref.NodeId
            elif name in METHOD_NAMES and ref.NodeClass == ua.NodeClass.Method:
                binding.methods[name] = ref.NodeId
            elif name == PROCESS_VALUES:
                folders.append((binding, ref.NodeId))
    pv_refs = await _browse_many(
        client, [f for _, f in folders], node_class_mask=int(ua.NodeClass.Variable)
    )
    pvs: list[tuple[WorkUnitBinding, ua.NodeId, str]] = []
    for (binding, _), refs in zip(folders, pv_refs, strict=True):
        pvs.extend((binding, r.NodeId, r.BrowseName.Name) for r in refs)
    props = await _browse_many(client, [n for _, n, _ in pvs], ua.ObjectIds.HasProperty)
    to_read: list[tuple[int, str, ua.NodeId]] = []
    for i, refs in enumerate(props):
        for ref in refs:
            if ref.BrowseName.Name in ("EngineeringUnits", "Characteristic"):
                to_read.append((i, ref.BrowseName.Name, ref.NodeId))
    values = await _read_values(client, [n for _, _, n in to_read])
    extra: dict[int, dict[str, Any]] = {}
    for (i, what, _), value in zip(to_read, values, strict=True):
        extra.setdefault(i, {})[what] = value
    for i, (binding, nodeid, name) in enumerate(pvs):
        eu = extra.get(i, {}).get("EngineeringUnits")
        unit = eu.DisplayName.Text if eu is not None and eu.DisplayName is not None else ""
        characteristic = extra.get(i, {}).get("Characteristic") or name
        binding.process_values[nodeid] = ProcessValueBinding(name, unit or "", characteristic)
    return bindings


async def _read_values(client: Client, nodes: Sequence[ua.NodeId]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(nodes), BROWSE_CHUNK):
        chunk = [client.get_node(n) for n in nodes[start : start + BROWSE_CHUNK]]
        out.extend(await client.read_values(chunk))
    return out


# --- YAML tag mapping --------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessValueTag(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    node: Annotated[str, Field(min_length=1)]
    unit: str = ""
    characteristic: str | None = None


class WorkUnitTags(_Strict):
    """One work unit of a PLC: the NodeId (``ns=3;s=...`` text) of each tag it has."""

    code: Annotated[str, Field(min_length=1, max_length=100)]
    line: str = ""
    object: str | None = None
    """The object the methods belong to (needed to dispatch with StoreAndStart)."""
    tags: dict[str, str] = Field(default_factory=dict)
    process_values: list[ProcessValueTag] = Field(default_factory=list)
    methods: dict[str, str] = Field(default_factory=dict)


class TagMapping(_Strict):
    """A YAML tag mapping for servers that do not follow the information model."""

    work_units: Annotated[list[WorkUnitTags], Field(min_length=1)]


class MappingError(ValueError):
    """The tag mapping file is invalid; the message names the file and the field."""


def load_mapping(path: Path) -> TagMapping:
    """Read and validate a tag mapping; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: cannot read the tag mapping: {exc}") from None
    try:
        mapping = TagMapping.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise MappingError(f"{path}: {problems}") from None
    for i, wu in enumerate(mapping.work_units):
        for tag in wu.tags:
            if tag not in SUBSCRIBED_TAGS:
                raise MappingError(
                    f"{path}: work_units[{i}].tags.{tag}: unknown tag "
                    f"(expected one of {', '.join(SUBSCRIBED_TAGS)})"
                )
        for name in wu.methods:
            if name not in METHOD_NAMES:
                raise MappingError(f"{path}: work_units[{i}].methods.{name}: unknown method")
        for text in [*wu.tags.values(), *(p.node for p in wu.process_values), *wu.methods.values()]:
            _parse_nodeid(path, text)
    return mapping


def _parse_nodeid(path: Path | None, text: str) -> ua.NodeId:
    try:
        return ua.NodeId.from_string(text)
    except (ValueError, ua.UaStringParsingError) as exc:
        where = f"{path}: " if path else ""
        raise MappingError(f"{where}{text!r} is not a NodeId ({exc})") from None


def bindings_from_mapping(mapping: TagMapping) -> list[WorkUnitBinding]:
    """The work units of a tag mapping as bindings."""
    out = []
    for wu in mapping.work_units:
        out.append(
            WorkUnitBinding(
                code=wu.code,
                line=wu.line,
                object=_parse_nodeid(None, wu.object) if wu.object else None,
                tags={k: _parse_nodeid(None, v) for k, v in wu.tags.items()},
                process_values={
                    _parse_nodeid(None, p.node): ProcessValueBinding(
                        p.name, p.unit, p.characteristic or p.name
                    )
                    for p in wu.process_values
                },
                methods={k: _parse_nodeid(None, v) for k, v in wu.methods.items()},
            )
        )
    return out
