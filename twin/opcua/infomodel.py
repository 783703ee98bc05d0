"""The twin's OPC UA information model: ``WorkUnitType`` and the plant's instances.

What a client finds (PRODUCT.md, "OPC UA information model of the twin"), namespace
``urn:mestwin:twin``::

    Objects/Plant                               (FolderType; its BrowseName is ``Plant``)
      <LineCode>                                (FolderType, one per production line)
        <WorkUnitCode>                          (WorkUnitType, one per ISA-95 work unit)
          State                Int32    PackML state number (ISA-TR88.00.02, 6.1)
          StateName            String   PackML state name (Execute, Held...)
          UnitMode             String   PackML unit mode name (Production, Maintenance, Manual)
          StopReason           String   why it is not executing (empty when it is)
          ProdProcessedCount   Int32    PackML Admin.ProdProcessedCount (cumulative)
          ProdDefectiveCount   Int32    PackML Admin.ProdDefectiveCount (cumulative)
          ProdConsumedCount    Int32    PackML Admin.ProdConsumedCount (cumulative)
          CurMachSpeed         Double   PackML Status.CurMachSpeed, units per minute
          MachSpeed            Double   PackML Status.MachSpeed (set point), units per minute
          JobOrderID           String   ISA-95 job order being executed ('' when none)
          MaterialLotID        String   material lot being consumed
          ProductID            String   product (ISA-95 product definition) being made
          ProcessValues        (FolderType) one AnalogItemType Double per process value,
                                         with EURange and EngineeringUnits (OPC 10000-8, 5.3.2)
                                         and, when it measures one, the inspection
                                         ``Characteristic`` (String property)
          StoreAndStart(jobOrderId String, productId String, quantity Int32)
          Stop()
          Reset()                         (ISA-95 Part 5 job control, in method form)

Alarms (breakdown, blocked, starved) are events of ``WorkUnitAlarmEventType`` (a subtype
of ``BaseEventType`` with ``AlarmName``, ``Active`` and ``WorkUnit``), raised at the work
unit object and at the ``Server`` object (so a client can watch the whole plant with one
event monitored item), with the OPC UA ``Severity`` 1..1000.

NodeIds are strings that read as paths (``ns=2;s=BTL1/BTL1-FILLER.State``), so a PLC-style
tag mapping can name them. The address space is built with one ``AddNodes`` batch of
prebuilt items rather than through the node-by-node convenience API: the reference plant
(200 work units, ~6,000 nodes) builds in seconds instead of minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from asyncua import Server, ua

from plant_models.batch import PHASE_NUMBER
from plant_models.schema import Line, PlantModel, WorkUnit
from twin.hooks import PackMLState
from twin.opcua.units import eu_information

# asyncua annotates its constructors with its own int/str subclasses (Int32, UInt16...);
# these aliases accept plain Python values, which asyncua converts itself.
NodeId: Callable[..., ua.NodeId] = ua.NodeId
StatusCode: Callable[..., ua.StatusCode] = ua.StatusCode

NAMESPACE_URI = "urn:mestwin:twin"
PLANT_FOLDER = "Plant"
WORK_UNIT_TYPE = "WorkUnitType"
ALARM_EVENT_TYPE = "WorkUnitAlarmEventType"
PROCESS_VALUES = "ProcessValues"

STATE_NAMES: dict[int, str] = {s.value: s.name.capitalize() for s in PackMLState}
"""PackML state number -> name as PackML spells it (``Execute``, ``Held``...)."""

UNIT_MODES = ("Production", "Maintenance", "Manual")

# (browse name, variant type, initial value, description)
_VARIABLES: tuple[tuple[str, ua.VariantType, Any, str], ...] = (
    ("State", ua.VariantType.Int32, int(PackMLState.STOPPED), "PackML state number"),
    ("StateName", ua.VariantType.String, "Stopped", "PackML state name"),
    ("UnitMode", ua.VariantType.String, "Production", "PackML unit mode"),
    ("StopReason", ua.VariantType.String, "", "Why the unit is not executing"),
    ("ProdProcessedCount", ua.VariantType.Int32, 0, "Units processed (cumulative)"),
    ("ProdDefectiveCount", ua.VariantType.Int32, 0, "Defective units (cumulative)"),
    ("ProdConsumedCount", ua.VariantType.Int32, 0, "Units of material consumed (cumulative)"),
    ("CurMachSpeed", ua.VariantType.Double, 0.0, "Current machine speed, units/min"),
    ("MachSpeed", ua.VariantType.Double, 0.0, "Machine speed set point, units/min"),
    ("JobOrderID", ua.VariantType.String, "", "ISA-95 job order being executed"),
    ("MaterialLotID", ua.VariantType.String, "", "Material lot being consumed"),
    ("ProductID", ua.VariantType.String, "", "Product being made"),
)
VARIABLE_NAMES: tuple[str, ...] = tuple(v[0] for v in _VARIABLES)

# A batch work unit's (ISA-88, ``plant_models.batch``) extra variables: Optional children
# of ``WorkUnitType``, instantiated only on batch units. The phase number is also a process
# value (``PHASE_NUMBER`` under ``ProcessValues``), so a collector that records process
# values records every phase transition with its job order and time.
BATCH_VARIABLES: tuple[tuple[str, ua.VariantType, Any, str], ...] = (
    ("BatchID", ua.VariantType.String, "", "ISA-88 batch identification of the batch in the unit"),
    ("BatchQuantity", ua.VariantType.Double, 0.0, "Batch size (quantity) of that batch"),
    ("PhaseName", ua.VariantType.String, "", "ISA-88 phase running (empty between batches)"),
)

_DATATYPES = {
    ua.VariantType.Int32: NodeId(ua.ObjectIds.Int32),
    ua.VariantType.Double: NodeId(ua.ObjectIds.Double),
    ua.VariantType.String: NodeId(ua.ObjectIds.String),
    ua.VariantType.Boolean: NodeId(ua.ObjectIds.Boolean),
}

# (method, input arguments as (name, variant type, description))
METHODS: tuple[tuple[str, tuple[tuple[str, ua.VariantType, str], ...]], ...] = (
    (
        "StoreAndStart",
        (
            ("jobOrderId", ua.VariantType.String, "ISA-95 job order to execute"),
            ("productId", ua.VariantType.String, "Product the job order makes"),
            ("quantity", ua.VariantType.Int32, "Units to make (> 0)"),
        ),
    ),
    ("Stop", ()),
    ("Reset", ()),
)


def _nid(identifier: str, ns: int) -> ua.NodeId:
    return ua.NodeId(ua.String(identifier), ua.Int16(ns))


def _qn(name: str, ns: int) -> ua.QualifiedName:
    return ua.QualifiedName(name, ua.UInt16(ns))


def _ref(ref: int) -> ua.NodeId:
    return NodeId(ref)


@dataclass
class WorkUnitNodes:
    """The NodeIds of one work unit instance (what the publisher writes to)."""

    code: str
    line: str
    object: ua.NodeId
    variables: dict[str, ua.NodeId]
    process_values: dict[str, ua.NodeId]
    methods: dict[str, ua.NodeId]
    mach_speed: float


@dataclass
class PlantNodes:
    """Everything the builder made: the namespace index, types and every work unit."""

    ns: int
    work_unit_type: ua.NodeId
    alarm_event_type: ua.NodeId
    plant: ua.NodeId
    work_units: dict[str, WorkUnitNodes] = field(default_factory=dict)


class _Items:
    """Collects ``AddNodesItem``s (plus extra references) to add in one batch."""

    def __init__(self, ns: int) -> None:
        self.ns = ns
        self.items: list[ua.AddNodesItem] = []
        self.references: list[ua.AddReferencesItem] = []

    def _item(
        self,
        parent: ua.NodeId,
        nodeid: ua.NodeId,
        name: str,
        node_class: ua.NodeClass,
        reftype: int,
        attrs: Any,
        typedef: int | ua.NodeId | None,
        browse_ns: int | None = None,
    ) -> ua.NodeId:
        item = ua.AddNodesItem()
        item.ParentNodeId = parent
        item.RequestedNewNodeId = nodeid
        item.BrowseName = _qn(name, self.ns if browse_ns is None else browse_ns)
        item.NodeClass = node_class
        item.ReferenceTypeId = _ref(reftype)
        if typedef is not None:
            item.TypeDefinition = typedef if isinstance(typedef, ua.NodeId) else _ref(typedef)
        item.NodeAttributes = attrs
        self.items.append(item)
        return nodeid

    def obj(
        self,
        parent: ua.NodeId,
        nodeid: ua.NodeId,
        name: str,
        typedef: int | ua.NodeId,
        reftype: int = ua.ObjectIds.Organizes,
        description: str = "",
        notifier: bool = False,
    ) -> ua.NodeId:
        attrs = ua.ObjectAttributes()
        attrs.DisplayName = ua.LocalizedText(name)
        attrs.Description = ua.LocalizedText(description or name)
        attrs.EventNotifier = ua.Byte(1 if notifier else 0)  # bit 0: SubscribeToEvents
        attrs.WriteMask = ua.UInt32(0)
        attrs.UserWriteMask = ua.UInt32(0)
        return self._item(parent, nodeid, name, ua.NodeClass.Object, reftype, attrs, typedef)

    def object_type(self, parent: ua.NodeId, nodeid: ua.NodeId, name: str, doc: str) -> ua.NodeId:
        attrs = ua.ObjectTypeAttributes()
        attrs.DisplayName = ua.LocalizedText(name)
        attrs.Description = ua.LocalizedText(doc)
        attrs.IsAbstract = False
        attrs.WriteMask = ua.UInt32(0)
        attrs.UserWriteMask = ua.UInt32(0)
        return self._item(
            parent, nodeid, name, ua.NodeClass.ObjectType, ua.ObjectIds.HasSubtype, attrs, None
        )

    def var(
        self,
        parent: ua.NodeId,
        nodeid: ua.NodeId,
        name: str,
        vtype: ua.VariantType,
        value: Any,
        description: str,
        typedef: int = ua.ObjectIds.BaseDataVariableType,
        reftype: int = ua.ObjectIds.HasComponent,
        datatype: ua.NodeId | None = None,
        array: bool = False,
        browse_ns: int | None = None,
    ) -> ua.NodeId:
        attrs = ua.VariableAttributes()
        attrs.DisplayName = ua.LocalizedText(name)
        attrs.Description = ua.LocalizedText(description)
        attrs.DataType = datatype if datatype is not None else _DATATYPES[vtype]
        attrs.Value = ua.Variant(value, vtype)
        attrs.ValueRank = ua.Int32(1 if array else -1)
        attrs.ArrayDimensions = [ua.UInt32(0)] if array else []
        attrs.AccessLevel = ua.Byte(ua.AccessLevel.CurrentRead.mask)
        attrs.UserAccessLevel = ua.Byte(ua.AccessLevel.CurrentRead.mask)
        attrs.MinimumSamplingInterval = ua.Double(0.0)
        attrs.Historizing = False
        attrs.WriteMask = ua.UInt32(0)
        attrs.UserWriteMask = ua.UInt32(0)
        return self._item(
            parent, nodeid, name, ua.NodeClass.Variable, reftype, attrs, typedef, browse_ns
        )

    def prop(
        self,
        parent: ua.NodeId,
        nodeid: ua.NodeId,
        name: str,
        vtype: ua.VariantType,
        value: Any,
        datatype: ua.NodeId | None = None,
        array: bool = False,
    ) -> ua.NodeId:
        # Standard properties (EURange, InputArguments...) live in namespace 0.
        return self.var(
            parent,
            nodeid,
            name,
            vtype,
            value,
            name,
            typedef=ua.ObjectIds.PropertyType,
            reftype=ua.ObjectIds.HasProperty,
            datatype=datatype,
            array=array,
            browse_ns=0,
        )

    def method(
        self,
        parent: ua.NodeId,
        nodeid: ua.NodeId,
        name: str,
        inputs: tuple[tuple[str, ua.VariantType, str], ...],
    ) -> ua.NodeId:
        attrs = ua.MethodAttributes()
        attrs.DisplayName = ua.LocalizedText(name)
        attrs.Description = ua.LocalizedText(name)
        attrs.Executable = True
        attrs.UserExecutable = True
        attrs.WriteMask = ua.UInt32(0)
        attrs.UserWriteMask = ua.UInt32(0)
        self._item(
            parent, nodeid, name, ua.NodeClass.Method, ua.ObjectIds.HasComponent, attrs, None
        )
        if inputs:
            args = [
                ua.Argument(
                    Name=arg_name,
                    DataType=_DATATYPES[vtype],
                    ValueRank=ua.Int32(-1),
                    ArrayDimensions=[],
                    Description=ua.LocalizedText(doc),
                )
                for arg_name, vtype, doc in inputs
            ]
            self.prop(
                nodeid,
                _nid(f"{nodeid.Identifier!s}.InputArguments", self.ns),
                "InputArguments",
                ua.VariantType.ExtensionObject,
                args,
                datatype=NodeId(ua.ObjectIds.Argument),
                array=True,
            )
        return nodeid

    def mandatory(self, nodeid: ua.NodeId) -> None:
        """Mark a type's child as ModellingRule Mandatory (OPC 10000-3, 6.4.4.4.2)."""
        self.reference(
            nodeid, ua.ObjectIds.HasModellingRule, _ref(ua.ObjectIds.ModellingRule_Mandatory)
        )

    def optional(self, nodeid: ua.NodeId) -> None:
        """Mark a type's child as ModellingRule Optional (OPC 10000-3, 6.4.4.4.3)."""
        self.reference(
            nodeid, ua.ObjectIds.HasModellingRule, _ref(ua.ObjectIds.ModellingRule_Optional)
        )

    def reference(self, source: ua.NodeId, reftype: int, target: ua.NodeId) -> None:
        ref = ua.AddReferencesItem()
        ref.SourceNodeId = source
        ref.ReferenceTypeId = _ref(reftype)
        ref.TargetNodeId = target
        ref.IsForward = True
        ref.TargetNodeClass = ua.NodeClass.Unspecified
        self.references.append(ref)

    async def commit(self, server: Server) -> None:
        """Add everything in one batch; a refused item is an error naming the node."""
        session = server.iserver.isession
        results = await session.add_nodes(self.items)
        for item, result in zip(self.items, results, strict=True):
            if not result.StatusCode.is_good():
                raise RuntimeError(
                    f"OPC UA address space: cannot add {item.RequestedNewNodeId.to_string()} "
                    f"({item.BrowseName.Name}): {result.StatusCode.name}"
                )
        if self.references:
            for ref, status in zip(
                self.references, await session.add_references(self.references), strict=True
            ):
                if not status.is_good():
                    raise RuntimeError(
                        f"OPC UA address space: cannot add reference from "
                        f"{ref.SourceNodeId.to_string()}: {status.name}"
                    )
        self.items = []
        self.references = []


def _build_types(items: _Items) -> tuple[ua.NodeId, ua.NodeId]:
    ns = items.ns
    wut = _nid(WORK_UNIT_TYPE, ns)
    items.object_type(
        _ref(ua.ObjectIds.BaseObjectType),
        wut,
        WORK_UNIT_TYPE,
        "An ISA-95 work unit (machine) with PackML state, admin counters and job control.",
    )
    for name, vtype, value, doc in _VARIABLES:
        child = items.var(wut, _nid(f"{WORK_UNIT_TYPE}.{name}", ns), name, vtype, value, doc)
        items.mandatory(child)
    folder = items.obj(
        wut,
        _nid(f"{WORK_UNIT_TYPE}.{PROCESS_VALUES}", ns),
        PROCESS_VALUES,
        ua.ObjectIds.FolderType,
        reftype=ua.ObjectIds.HasComponent,
        description="Process values (AnalogItemType) of the work unit",
    )
    items.mandatory(folder)
    for name, inputs in METHODS:
        method = items.method(wut, _nid(f"{WORK_UNIT_TYPE}.{name}", ns), name, inputs)
        items.mandatory(method)
    for name, vtype, value, doc in BATCH_VARIABLES:
        child = items.var(wut, _nid(f"{WORK_UNIT_TYPE}.{name}", ns), name, vtype, value, doc)
        items.optional(child)
    aet = _nid(ALARM_EVENT_TYPE, ns)
    items.object_type(
        _ref(ua.ObjectIds.BaseEventType),
        aet,
        ALARM_EVENT_TYPE,
        "An alarm of a work unit (breakdown, blocked, starved...), raised or cleared.",
    )
    for name, vtype, value, doc in (
        ("AlarmName", ua.VariantType.String, "", "Which alarm (e.g. the failure mode)"),
        ("Active", ua.VariantType.Boolean, False, "True when raised, False when cleared"),
        ("WorkUnit", ua.VariantType.String, "", "Code of the work unit"),
    ):
        prop = items.var(
            aet,
            _nid(f"{ALARM_EVENT_TYPE}.{name}", ns),
            name,
            vtype,
            value,
            doc,
            typedef=ua.ObjectIds.PropertyType,
            reftype=ua.ObjectIds.HasProperty,
        )
        items.mandatory(prop)
    return wut, aet


def _build_work_unit(
    items: _Items, line: Line, wu: WorkUnit, parent: ua.NodeId, wut: ua.NodeId
) -> WorkUnitNodes:
    ns = items.ns
    base = f"{line.code}/{wu.code}"
    obj = items.obj(
        parent,
        _nid(base, ns),
        wu.code,
        wut,
        description=f"{wu.name or wu.code} ({wu.equipment_class})",
        notifier=True,
    )
    cycle = wu.mean_cycle_time()
    mach_speed = 60.0 / cycle if cycle > 0 else 0.0
    variables: dict[str, ua.NodeId] = {}
    for name, vtype, value, doc in _VARIABLES:
        initial = mach_speed if name == "MachSpeed" else value
        variables[name] = items.var(obj, _nid(f"{base}.{name}", ns), name, vtype, initial, doc)
    if wu.batch is not None:
        for name, vtype, value, doc in BATCH_VARIABLES:
            variables[name] = items.var(obj, _nid(f"{base}.{name}", ns), name, vtype, value, doc)
    folder = items.obj(
        obj,
        _nid(f"{base}.{PROCESS_VALUES}", ns),
        PROCESS_VALUES,
        ua.ObjectIds.FolderType,
        reftype=ua.ObjectIds.HasComponent,
    )
    process_values: dict[str, ua.NodeId] = {}
    for pv in wu.process_values:
        pv_id = f"{base}.{PROCESS_VALUES}.{pv.name}"
        node = items.var(
            folder,
            _nid(pv_id, ns),
            pv.name,
            ua.VariantType.Double,
            float(pv.distribution.mean()),
            f"{pv.name} [{pv.unit}]" if pv.unit else pv.name,
            typedef=ua.ObjectIds.AnalogItemType,
        )
        low, high = pv.eu_range if pv.eu_range is not None else _default_range(pv.distribution)
        items.prop(
            node,
            _nid(f"{pv_id}.EURange", ns),
            "EURange",
            ua.VariantType.ExtensionObject,
            ua.Range(Low=ua.Double(low), High=ua.Double(high)),
            datatype=NodeId(ua.ObjectIds.Range),
        )
        items.prop(
            node,
            _nid(f"{pv_id}.EngineeringUnits", ns),
            "EngineeringUnits",
            ua.VariantType.ExtensionObject,
            eu_information(pv.unit),
            datatype=NodeId(ua.ObjectIds.EUInformation),
        )
        if pv.characteristic:
            # Which inspection characteristic the value measures (the MES judges it).
            items.var(
                node,
                _nid(f"{pv_id}.Characteristic", ns),
                "Characteristic",
                ua.VariantType.String,
                pv.characteristic,
                "Inspection characteristic this value measures",
                typedef=ua.ObjectIds.PropertyType,
                reftype=ua.ObjectIds.HasProperty,
            )
        process_values[pv.name] = node
    if wu.batch is not None:
        pv_id = f"{base}.{PROCESS_VALUES}.{PHASE_NUMBER}"
        process_values[PHASE_NUMBER] = items.var(
            folder,
            _nid(pv_id, ns),
            PHASE_NUMBER,
            ua.VariantType.Double,
            0.0,
            "ISA-88 phase number in the recipe (0 between batches)",
            typedef=ua.ObjectIds.AnalogItemType,
        )
        items.prop(
            process_values[PHASE_NUMBER],
            _nid(f"{pv_id}.EURange", ns),
            "EURange",
            ua.VariantType.ExtensionObject,
            ua.Range(Low=ua.Double(0.0), High=ua.Double(float(len(wu.batch.phases)))),
            datatype=NodeId(ua.ObjectIds.Range),
        )
    methods = {
        name: items.method(obj, _nid(f"{base}.{name}", ns), name, inputs)
        for name, inputs in METHODS
    }
    return WorkUnitNodes(
        code=wu.code,
        line=line.code,
        object=obj,
        variables=variables,
        process_values=process_values,
        methods=methods,
        mach_speed=mach_speed,
    )


def _default_range(distribution: Any) -> tuple[float, float]:
    """A range for a process value without ``eu_range``: its mean +- 50 % (or 0..1)."""
    mean = float(distribution.mean())
    spread = abs(mean) * 0.5 or 1.0
    return mean - spread, mean + spread


async def build_address_space(
    server: Server, model: PlantModel, lines: Iterable[str] | None = None
) -> PlantNodes:
    """Build the types and the ``Plant`` tree for ``lines`` (all lines when None).

    ``server`` must be initialised (``await server.init()``) and not yet started.
    """
    ns = await server.register_namespace(NAMESPACE_URI)
    items = _Items(ns)
    wut, aet = _build_types(items)
    await items.commit(server)
    plant = items.obj(
        _ref(ua.ObjectIds.ObjectsFolder),
        _nid(PLANT_FOLDER, ns),
        PLANT_FOLDER,
        ua.ObjectIds.FolderType,
        description=f"{model.plant.name or model.plant.code}: lines and work units",
        notifier=True,
    )
    items.reference(_ref(ua.ObjectIds.Server), ua.ObjectIds.HasNotifier, plant)
    nodes = PlantNodes(ns=ns, work_unit_type=wut, alarm_event_type=aet, plant=plant)
    wanted = set(lines) if lines is not None else None
    for line in model.lines:
        if wanted is not None and line.code not in wanted:
            continue
        line_node = items.obj(
            plant,
            _nid(line.code, ns),
            line.code,
            ua.ObjectIds.FolderType,
            description=line.name or line.code,
            notifier=True,
        )
        for wu in line.work_units:
            nodes.work_units[wu.code] = _build_work_unit(items, line, wu, line_node, wut)
    await items.commit(server)
    return nodes
