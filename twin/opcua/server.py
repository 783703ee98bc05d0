"""The twin's OPC UA server: a plant model served as ``WorkUnitType`` instances.

``PlantServer`` owns one asyncua ``Server`` for some lines of a plant (all of them, or one
line with ``--per-line``). ``OpcUaPublisher`` is the engine's ``PlantObserver``: the
engine calls it inline, in simulated time, and it only appends to a queue (observers
must not block); a pump task in the asyncio loop drains the queue and writes the values
with ``Server.write_attribute_value`` and prebuilt ``DataValue``s (the fast path; see
``twin.opcua.fastpath`` for the two it adds inside asyncua), with the simulation's time as
``SourceTimestamp`` (paced runs pass the wall-clock instant). Values that did not change
are not written (the server does not sample, every write becomes a notification).

The methods ``StoreAndStart``, ``Stop`` and ``Reset`` of each work unit call the engine's
``PlantControl``; their arguments are checked first and a wrong call answers with the
OPC UA status that says why (``BadArgumentsMissing``, ``BadTypeMismatch``,
``BadOutOfRange``, ``BadInvalidArgument`` from the engine, ``BadNotSupported`` when no
engine is attached).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from asyncua import Server, ua

from plant_models.schema import PlantModel
from twin.hooks import PackMLState, PlantControl, product_ids
from twin.opcua.fastpath import (
    ImmutableDataValue,
    ValueWriter,
    await_logged,
    double_variant,
    good_value,
    lean_notifications,
    value_target,
    value_writer,
    write_now,
)
from twin.opcua.infomodel import (
    PHASE_NUMBER,
    STATE_NAMES,
    PlantNodes,
    StatusCode,
    WorkUnitNodes,
    build_address_space,
)
from twin.opcua.security import APPLICATION_URI, SecurityConfig, apply_security

log = logging.getLogger(__name__)

PUMP_IDLE_S = 0.01
"""How long the pump sleeps when the queue is empty: bounds the publish latency it adds."""
PUMP_SLICE = 500
"""Writes per slice before the pump yields, so publishing and method calls keep running."""

_MODE_OF_STATE = {"maintenance": "Maintenance"}


_DataValue: Callable[..., ua.DataValue] = ImmutableDataValue  # accepts plain datetimes


def quiet_asyncua() -> None:
    """asyncua logs whole publish results at INFO: keep it at WARNING (PERFORMANCE-NOTES)."""
    for name in ("asyncua", "asyncua.server", "asyncua.client", "asyncua.common"):
        logging.getLogger(name).setLevel(logging.WARNING)


class PlantServer:
    """One OPC UA server for ``lines`` of ``model`` (all lines when None) at ``endpoint``."""

    def __init__(
        self,
        model: PlantModel,
        endpoint: str,
        *,
        lines: Iterable[str] | None = None,
        control: PlantControl | None = None,
        submit: Callable[[Callable[[], None]], Awaitable[None]] | None = None,
        security: SecurityConfig | None = None,
        name: str | None = None,
    ) -> None:
        self.model = model
        self.endpoint = endpoint
        self.lines = list(lines) if lines is not None else [line.code for line in model.lines]
        self.control = control
        self.submit = submit or _call_inline
        self._products = product_ids(model)  # StoreAndStart's productId
        self.security = security or SecurityConfig()
        self.name = name or f"mestwin twin {model.plant.code}"
        self.server: Server | None = None
        self.nodes: PlantNodes | None = None
        self._alarm_gens: dict[str, Any] = {}
        self._server_alarm_gen: Any = None

    async def build(self) -> PlantNodes:
        """Initialise the server and build its address space (not yet listening)."""
        quiet_asyncua()
        lean_notifications()
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(self.name)
        await server.set_application_uri(APPLICATION_URI)
        await server.set_build_info(
            product_uri=APPLICATION_URI,
            manufacturer_name="mestwin",
            product_name="mestwin twin",
            software_version="0.1.0",
            build_number="0",
            build_date=datetime.now(UTC),
        )
        await apply_security(server, self.security)
        nodes = await build_address_space(server, self.model, self.lines)
        await self._stamp_initial_values(server, nodes)
        for wu in nodes.work_units.values():
            for method_name, method_id in wu.methods.items():
                # One callback per method node: asyncua passes the object the client
                # named, so the callback checks it owns the method (OPC 10000-4, 5.11.2).
                call = self._make_call(wu.code, method_name, wu.object)
                server.link_method(server.get_node(method_id), call)
        # Alarm events: one generator per work unit (event raised at the work unit) and
        # one at the Server object (a client can watch the whole plant with one item).
        for wu in nodes.work_units.values():
            self._alarm_gens[wu.code] = await server.get_event_generator(
                nodes.alarm_event_type, wu.object
            )
        self._server_alarm_gen = await server.get_event_generator(
            nodes.alarm_event_type, ua.ObjectIds.Server
        )
        self.server = server
        self.nodes = nodes
        return nodes

    async def _stamp_initial_values(self, server: Server, nodes: PlantNodes) -> None:
        """Date the address space's initial values at the plant's start (or now, if that
        is later), not at the moment the server was built: a client's first read of a tag
        the plant has not written yet (a work unit still ``Stopped``) must not be dated
        after everything the plant then reports, or an MES that keeps the latest state
        would keep that first read as current for the whole run."""
        origin = min(self.model.plant.start.astimezone(UTC), datetime.now(UTC))
        for wu in nodes.work_units.values():
            for nodeid in (*wu.variables.values(), *wu.process_values.values()):
                current = server.read_attribute_value(nodeid)
                await server.write_attribute_value(
                    nodeid,
                    _DataValue(Value=current.Value, SourceTimestamp=origin, ServerTimestamp=origin),
                )

    async def start(self) -> None:
        """Build (if needed) and start listening."""
        if self.server is None:
            await self.build()
        assert self.server is not None
        await self.server.start()
        log.info(
            "OPC UA server %s listening at %s (lines %s, %d work units, security %s)",
            self.name,
            self.endpoint,
            ",".join(self.lines),
            len(self.nodes.work_units) if self.nodes else 0,
            self.security.mode,
        )

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            log.info("OPC UA server at %s stopped", self.endpoint)

    async def __aenter__(self) -> PlantServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- writing ---------------------------------------------------------------------

    async def raise_alarm(
        self, work_unit: str, alarm: str, severity: int, message: str, active: bool, ts: datetime
    ) -> None:
        """Raise (or clear) an alarm event at the work unit and at the Server object."""
        assert self.nodes is not None
        wu = self.nodes.work_units[work_unit]
        for gen in (self._alarm_gens[work_unit], self._server_alarm_gen):
            event = gen.event
            event.SourceNode = wu.object
            event.SourceName = work_unit
            event.Severity = ua.UInt16(max(1, min(1000, severity)))
            event.AlarmName = alarm
            event.Active = active
            event.WorkUnit = work_unit
            await gen.trigger(time_attr=ts, message=message or alarm)

    # --- methods -----------------------------------------------------------------------

    def _make_call(self, code: str, name: str, obj: ua.NodeId) -> Callable[..., Any]:
        async def call(parent: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
            result = ua.CallMethodResult()
            if parent != obj:
                result.StatusCode = StatusCode(ua.StatusCodes.BadMethodInvalid)
                return result
            status = await self._dispatch(code, name, args)
            result.StatusCode = StatusCode(status)
            result.InputArgumentResults = [ua.StatusCode() for _ in args]
            return result

        return call

    async def _dispatch(self, code: str, name: str, args: Sequence[ua.Variant]) -> int:
        """Check the arguments and call ``PlantControl``; the OPC UA status to answer."""
        expected = 3 if name == "StoreAndStart" else 0
        if len(args) < expected:
            return ua.StatusCodes.BadArgumentsMissing
        if len(args) > expected:
            return ua.StatusCodes.BadTooManyArguments
        control = self.control
        if control is None:
            log.warning("OPC UA: %s.%s called but no engine is attached", code, name)
            return ua.StatusCodes.BadNotSupported
        try:
            if name == "StoreAndStart":
                job, product, quantity = (a.Value for a in args)
                if not isinstance(job, str) or not isinstance(product, str):
                    return ua.StatusCodes.BadTypeMismatch
                if not isinstance(quantity, int) or isinstance(quantity, bool):
                    return ua.StatusCodes.BadTypeMismatch
                if not job or not product or quantity <= 0:
                    return ua.StatusCodes.BadOutOfRange
                product = self._products.get(product, product)
                await self.submit(lambda: control.store_and_start(code, job, product, quantity))
                log.info("OPC UA: %s.StoreAndStart(%s, %s, %d)", code, job, product, quantity)
            elif name == "Stop":
                await self.submit(lambda: control.stop(code))
                log.info("OPC UA: %s.Stop()", code)
            else:
                await self.submit(lambda: control.reset(code))
                log.info("OPC UA: %s.Reset()", code)
        except TimeoutError:
            log.warning("OPC UA: %s.%s: the engine did not answer in time", code, name)
            return ua.StatusCodes.BadTimeout
        except (ValueError, KeyError) as exc:
            # The engine refuses (unknown product, wrong state...): say so, keep serving.
            log.warning("OPC UA: %s.%s refused by the engine: %s", code, name, exc)
            return ua.StatusCodes.BadInvalidArgument
        return ua.StatusCodes.Good


async def _call_inline(command: Callable[[], None]) -> None:
    command()


_UNSET: Any = object()


class _Tag:
    """One variable the publisher writes: its last value queued (changes only are
    written), how many writes reached the server, and where the server keeps its value
    (``fastpath.value_target``, resolved on the first write through ``server``). Kept
    per tag so that a change costs no NodeId hashing (asyncua's ``NodeId.__hash__`` is
    Python)."""

    __slots__ = ("nodeid", "server", "target", "ts", "value", "variant", "writes")

    def __init__(self, nodeid: ua.NodeId) -> None:
        self.nodeid = nodeid
        self.value: Any = _UNSET
        self.variant: Any = None
        self.ts = 0.0
        self.writes = 0
        self.server: Any = None
        self.target: Any = None


class OpcUaPublisher:
    """The engine's ``PlantObserver`` for one or several ``PlantServer``s.

    Calls only queue (no I/O, no awaiting: the engine calls observers inline); ``run``
    is the pump that writes. ``deque.append`` is atomic, so an engine running in another
    thread may call too.
    """

    def __init__(self, servers: Sequence[PlantServer], start: datetime) -> None:
        self._start = start
        self._queues: dict[int, deque[tuple[Any, ...]]] = {}
        self._route: dict[str, tuple[PlantServer, WorkUnitNodes, deque[tuple[Any, ...]]]] = {}
        self._servers = list(servers)
        self._writers: dict[int, ValueWriter] = {}
        """Per server (``id``): how its values are written (``fastpath.value_writer``)."""
        self._tags: dict[ua.NodeId, _Tag] = {}
        """Every variable written to, by NodeId (the same across ``replace_servers``)."""
        self._variables: dict[str, dict[str, _Tag]] = {}
        self._values: dict[str, dict[str, _Tag]] = {}
        """Per work unit: its PackML tags and its process values, by name."""
        self._state_variants = {
            n: (ua.Variant(n, ua.VariantType.Int32), ua.Variant(s, ua.VariantType.String))
            for n, s in STATE_NAMES.items()
        }
        self.written = 0
        self.alarms = 0
        for server in self._servers:
            if server.nodes is None:
                raise RuntimeError(f"OPC UA server at {server.endpoint} is not built yet")
            queue: deque[tuple[Any, ...]] = deque()
            self._queues[id(server)] = queue
            for code, wu in server.nodes.work_units.items():
                self._route[code] = (server, wu, queue)
                self._add_tags(wu)
        self._stopping = asyncio.Event()
        self.paused = False
        """While True the pump writes nothing (servers being restarted); changes queue up."""

    def _add_tags(self, wu: WorkUnitNodes) -> None:
        tags = self._tags
        for names, nodeids in (
            (self._variables, wu.variables),
            (self._values, wu.process_values),
        ):
            mine = names[wu.code] = {}
            for name, nodeid in nodeids.items():
                tag = tags.get(nodeid)
                if tag is None:
                    tag = tags[nodeid] = _Tag(nodeid)
                mine[name] = tag

    @property
    def writes(self) -> Counter[ua.NodeId]:
        """Writes per node so far (benchmarks compare them with what a client received)."""
        return Counter({t.nodeid: t.writes for t in self._tags.values() if t.writes})

    def writes_to(self, nodeids: Iterable[ua.NodeId]) -> int:
        """Writes so far to ``nodeids``, together."""
        tags = self._tags
        return sum(tags[n].writes for n in nodeids if n in tags)

    def _ts(self, t: float, wall: float | None) -> float:
        """Source time as epoch seconds: the wall clock in paced runs, else start + t."""
        return wall if wall is not None else self._start.timestamp() + t

    @staticmethod
    def _put(queue: deque[tuple[Any, ...]], tag: _Tag, value: Any, variant: Any, ts: float) -> None:
        if tag.value is not _UNSET and tag.value == value:
            return
        tag.value = value
        tag.variant = variant
        tag.ts = ts
        queue.append((tag, variant, ts))

    # --- PlantObserver -----------------------------------------------------------------

    def on_state(
        self,
        t: float,
        work_unit: str,
        state: str,
        packml_state: PackMLState,
        reason: str,
        wall: float | None,
    ) -> None:
        _, wu, q = self._route[work_unit]
        ts = self._ts(t, wall)
        number = int(packml_state)
        v_number, v_name = self._state_variants[number]
        v = self._variables[work_unit]
        # StopReason first: a client that maps State sees the reason already changed.
        self._put(q, v["StopReason"], reason, ua.Variant(reason, ua.VariantType.String), ts)
        mode = _MODE_OF_STATE.get(state, "Production")
        self._put(q, v["UnitMode"], mode, ua.Variant(mode, ua.VariantType.String), ts)
        speed = wu.mach_speed if packml_state == PackMLState.EXECUTE else 0.0
        self._put(q, v["CurMachSpeed"], speed, ua.Variant(speed, ua.VariantType.Double), ts)
        self._put(q, v["StateName"], v_name.Value, v_name, ts)
        self._put(q, v["State"], number, v_number, ts)

    def on_counters(
        self,
        t: float,
        work_unit: str,
        processed: int,
        defective: int,
        consumed: int,
        wall: float | None,
    ) -> None:
        _, _, q = self._route[work_unit]
        ts = self._ts(t, wall)
        v = self._variables[work_unit]
        # Defective before processed: a collector that reads them in arrival order never
        # sees more defective than processed units.
        self._put(
            q, v["ProdDefectiveCount"], defective, ua.Variant(defective, ua.VariantType.Int32), ts
        )
        self._put(
            q, v["ProdProcessedCount"], processed, ua.Variant(processed, ua.VariantType.Int32), ts
        )
        self._put(
            q, v["ProdConsumedCount"], consumed, ua.Variant(consumed, ua.VariantType.Int32), ts
        )

    def on_value(
        self, t: float, work_unit: str, name: str, value: float, wall: float | None
    ) -> None:
        q = self._route[work_unit][2]
        tag = self._values[work_unit].get(name)
        if tag is None:
            raise KeyError(f"work unit {work_unit} has no process value {name!r} in the model")
        value = float(value)
        if tag.value == value:  # unchanged: not written (``_put``, inlined: one per sample)
            return
        ts = wall if wall is not None else self._start.timestamp() + t
        variant = double_variant(value)
        tag.value = value
        tag.variant = variant
        tag.ts = ts
        q.append((tag, variant, ts))

    def on_job(
        self,
        t: float,
        work_unit: str,
        job_order: str,
        product: str,
        material_lot: str,
        wall: float | None,
    ) -> None:
        _, _, q = self._route[work_unit]
        ts = self._ts(t, wall)
        v = self._variables[work_unit]
        for name, value in (
            ("ProductID", product),
            ("MaterialLotID", material_lot),
            ("JobOrderID", job_order),
        ):
            self._put(q, v[name], value, ua.Variant(value, ua.VariantType.String), ts)

    def on_alarm(
        self,
        t: float,
        work_unit: str,
        alarm: str,
        severity: int,
        message: str,
        active: bool,
        wall: float | None,
    ) -> None:
        _, _, q = self._route[work_unit]
        q.append((None, (work_unit, alarm, severity, message, active), self._ts(t, wall)))

    # --- BatchObserver (batch work units, ISA-88) --------------------------------------

    def on_phase(
        self,
        t: float,
        work_unit: str,
        batch_id: str,
        quantity: float,
        phase_number: int,
        phase_name: str,
        wall: float | None,
    ) -> None:
        _, _, q = self._route[work_unit]
        ts = self._ts(t, wall)
        v = self._variables[work_unit]
        self._put(q, v["BatchID"], batch_id, ua.Variant(batch_id, ua.VariantType.String), ts)
        self._put(
            q, v["BatchQuantity"], quantity, ua.Variant(float(quantity), ua.VariantType.Double), ts
        )
        self._put(q, v["PhaseName"], phase_name, ua.Variant(phase_name, ua.VariantType.String), ts)
        number = float(phase_number)
        self._put(q, self._values[work_unit][PHASE_NUMBER], number, double_variant(number), ts)

    # --- the pump ----------------------------------------------------------------------

    def pending(self) -> int:
        """Changes queued and not yet written."""
        return sum(len(q) for q in self._queues.values())

    async def flush(self) -> None:
        """Write everything queued now (tests and shutdown)."""
        for server in self._servers:
            await self._drain(server, self._queues[id(server)])

    async def run(self) -> None:
        """Drain the queues into the servers until ``stop``; one task serves them all."""
        while not self._stopping.is_set():
            if self.paused:
                await asyncio.sleep(PUMP_IDLE_S)
                continue
            busy = False
            for server in self._servers:
                queue = self._queues[id(server)]
                if queue:
                    busy = True
                    await self._drain(server, queue, PUMP_SLICE)
            if busy:
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(PUMP_IDLE_S)
        await self.flush()

    def stop(self) -> None:
        self._stopping.set()

    async def replace_servers(self, servers: Sequence[PlantServer]) -> None:
        """Publish to freshly built ``servers`` (same plant, same NodeIds) from now on.

        The new servers first get the last value written of every tag, with its source
        timestamp, so a client that reconnects reads the plant as it is (what a PLC
        restarting with retained values does).
        """
        queues = {id(old): self._queues[id(old)] for old in self._servers}
        self._servers = list(servers)
        self._queues = {}
        self._writers = {}
        for old_id, new in zip(queues, self._servers, strict=True):
            self._queues[id(new)] = queues[old_id]
            assert new.nodes is not None
            for code, wu in new.nodes.work_units.items():
                self._route[code] = (new, wu, self._queues[id(new)])
                self._add_tags(wu)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        now = datetime.now(UTC)
        for tag in self._tags.values():
            if tag.value is _UNSET:
                continue
            for server in self._servers:
                assert server.server is not None
                await server.server.write_attribute_value(
                    tag.nodeid,
                    _DataValue(
                        Value=tag.variant,
                        SourceTimestamp=epoch + timedelta(seconds=tag.ts),
                        ServerTimestamp=now,
                    ),
                )

    async def _drain(
        self, server: PlantServer, queue: deque[tuple[Any, ...]], limit: int | None = None
    ) -> None:
        assert server.server is not None
        write = self._writers.get(id(server))
        if write is None:
            write = self._writers[id(server)] = value_writer(server.server)
        plant = server.server
        now = datetime.now(UTC)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        n = len(queue) if limit is None else min(limit, len(queue))
        last_ts = -1.0
        source_ts = now
        popleft = queue.popleft
        written = 0
        try:
            for _ in range(n):
                tag, payload, ts = popleft()
                if ts != last_ts:  # the changes of one moment share their timestamp
                    source_ts = epoch + timedelta(seconds=ts)
                    last_ts = ts
                if tag is None:
                    work_unit, alarm, severity, message, active = payload
                    await server.raise_alarm(work_unit, alarm, severity, message, active, source_ts)
                    self.alarms += 1
                    continue
                value = good_value(payload, source_ts, now)
                if tag.server is not plant:  # first write through this server
                    tag.target = value_target(plant, tag.nodeid)
                    tag.server = plant
                target = tag.target
                left = None if target is None else write_now(target, value)
                if left is None:
                    await write(tag.nodeid, value)
                elif left:
                    await await_logged(left)
                written += 1
                tag.writes += 1
        finally:
            self.written += written


def endpoints_per_line(endpoint: str, lines: Sequence[str]) -> list[str]:
    """Consecutive ports from ``endpoint``'s, one per line (``--per-line``)."""
    parsed = urlparse(endpoint)
    if parsed.scheme != "opc.tcp" or parsed.port is None:
        raise ValueError(f"endpoint {endpoint!r}: expected opc.tcp://HOST:PORT")
    host = parsed.hostname or "127.0.0.1"
    return [f"opc.tcp://{host}:{parsed.port + i}{parsed.path}" for i in range(len(lines))]
