"""The system-under-test adapter for mes_core, over its REST API through ``mes_core.client``.

One clock, the plant's (``plant.start + t``, millisecond resolution as on the wire):
plant events carry it, and every action of a simulated person states it as
``occurred_at`` (business time), which the MES honours because the bench gives its people
the ``backdate`` permission besides their roles (``mes_core.domain.clock``). Master data
dates (certifications, lot expiries, calibration, due dates) are loaded as the plant model
writes them, on the plant's timeline, and the MES judges them at the action's business
time; reading records back uses the same anchor.

Each simulated person logs in with their own password, so the MES judges the actor as it
would on the shop floor (roles, certifications); the bench's admin loads master data and
plays ERP (planner) and supervisor.

Orders and actuals travel one of two ways (the ``orders`` setting):

- ``rest`` (the default): job orders are created and released through the REST API, and
  their actuals read back from it;
- ``b2mml``: the vendor-neutral channel (:mod:`twin.scenario.b2mml_channel`). Job orders go
  in only as a B2MML ``ProcessOperationsSchedule`` (``POST /api/v1/erp/schedules``,
  RequestState Released), and every order's state, good and scrap counts, lots consumed and
  produced and the genealogy edges come back only from a ``ProcessOperationsPerformance``
  (``GET /api/v1/erp/performance``). No REST endpoint of job orders, lots or genealogy is
  used for orders or actuals; operator actions, equipment records (state seconds, KPIs)
  and labour hours still use the REST API, since B2MML carries none of them here.
"""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from mes_core.client import MesClient, MesClientError
from mes_core.kpi.schemas import CalendarIn, KpiReport
from mes_core.schemas.execution import JobOrderCreate, JobOrderOut, OutputLot
from mes_core.schemas.masterdata import MasterData, MasterDataResult
from mes_core.schemas.plant_events import IngestResult, PlantEvent
from plant_models.schema import PlantModel, intake_of
from twin.scenario import b2mml_channel
from twin.scenario.reconcile import (
    LabourHours,
    OperationTimes,
    OrderRecord,
    Records,
    UnitRecord,
)
from twin.scenario.sut import (
    Answer,
    AuditRecord,
    IngestStats,
    Kpis,
    OperationView,
    OrderRequest,
    OrderView,
    Refusal,
    SignatureRecord,
    SutUnavailable,
)


@dataclass(frozen=True)
class _AuditEntry:
    entry_id: str
    action: str
    object_ref: str
    at: str
    entry_hash: str
    detail: dict[str, Any]


ROLE_MAP = {"operator": "operator", "qa": "quality", "supervisor": "supervisor"}
BACKDATE = "backdate"
"""The permission every simulated person gets: their actions happen at plant time."""
DEFAULT_PASSWORD = "mestwin"
COLLECTOR_KEY = "mestwin-collector-"  # API key names of the bench's collector
AUDIT_PAGE = 10_000  # the most GET /api/v1/audit returns at once
REPORT_CONCURRENCY = 4  # requests at once while reading the MES's records for the report
ORDER_CHANNELS = ("rest", "b2mml")
PERFORMANCE_CHUNK = 200  # job orders named per ProcessOperationsPerformance request


class MesCoreSut:
    """``SystemUnderTest`` for mes_core (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        plant_start: datetime,
        admin_user: str = "admin",
        admin_password: str = "admin",
        passwords: dict[str, str] | None = None,
        supervisor: str | None = None,
        timeout: float = 30.0,
        orders: str = "rest",
        date_shift: timedelta = timedelta(0),
        backdating: bool = True,
    ) -> None:
        """``date_shift``: added to every master data date; 0 for a run (one clock, the
        plant's). A plant loaded for people at terminals with no simulated plant running
        (``mestwin mes load-plant``) starts today instead, and its people act on the MES's
        clock (``backdating=False``: no ``backdate`` permission)."""
        if orders not in ORDER_CHANNELS:
            raise ValueError(f"orders: {orders!r} is not one of {', '.join(ORDER_CHANNELS)}")
        self.url = url
        self.order_channel = orders
        self.plant_start = plant_start
        self.date_shift = date_shift
        self.backdating = backdating
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.passwords = passwords or {}
        self.supervisor = supervisor
        self.timeout = timeout
        self._admin: MesClient | None = None
        self._collector: MesClient | None = None
        self._people: dict[str, MesClient] = {}
        self._latencies: list[float] = []
        self._segments: dict[str, dict[str, int]] = {}  # product id -> segment id -> sequence
        self._order_product: dict[str, str] = {}
        # (product id, segment id) -> the intermediate material that operation produces
        self._output_material: dict[tuple[str, str], str] = {}
        self._product_material: dict[str, str] = {}
        self._produced: dict[str, str] = {}  # job order -> output lot
        self._intermediate: dict[str, list[str]] = defaultdict(list)  # order -> its lots
        self._kpi_reports: dict[tuple[str, str, datetime, datetime], Any] = {}
        """KPI reports (plant quantities) read by ``records``, for ``kpis`` of that window."""
        self._plant: PlantModel | None = None
        self._sent: dict[str, int] = {}  # job orders the MES accepted -> quantity

    # -- plumbing -----------------------------------------------------------------------

    def _timed(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise SutUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except MesClientError as exc:
            if exc.status >= 500:
                raise SutUnavailable(f"HTTP {exc.status}: {exc.message}") from exc
            raise
        finally:
            self._latencies.append((time.perf_counter() - t0) * 1000.0)

    def _answer(self, fn: Any, *args: Any, **kwargs: Any) -> Answer:
        try:
            self._timed(fn, *args, **kwargs)
        except MesClientError as exc:
            return Answer(False, exc.rule, exc.message, exc.status)
        return Answer(True)

    def _admin_client(self) -> MesClient:
        if self._admin is None:
            client = MesClient(self.url, timeout=self.timeout)
            self._timed(client.login, self.admin_user, self.admin_password)
            self._admin = client
        return self._admin

    def _person(self, person: str) -> MesClient:
        client = self._people.get(person)
        if client is None:
            client = MesClient(self.url, timeout=self.timeout)
            self._timed(client.login, person, self.passwords.get(person, DEFAULT_PASSWORD))
            self._people[person] = client
        return client

    def _as(self, person: str) -> MesClient | Answer:
        try:
            return self._person(person)
        except MesClientError as exc:
            return Answer(False, exc.rule, f"{person} cannot log in: {exc.message}", exc.status)

    def plant_time(self, t: float) -> datetime:
        """Simulated second ``t`` on the plant's timeline (as plant events carry it)."""
        return self.plant_start + timedelta(milliseconds=round(t * 1000))

    def _quality_stamps(self, stamps: dict[str, list[float]]) -> None:
        """Nonconformances (opened, disposed) and their signatures, in plant seconds."""
        for nc in self._timed(self._admin_client().nonconformances):
            stamps["nonconformances opened"].extend(self._seconds_of(nc.opened_at))
            stamps["dispositions"].extend(self._seconds_of(nc.disposed_at))
            if nc.signature is not None:
                stamps["signatures"].extend(self._seconds_of(nc.signature.signed_at))

    def _labour_stamps(self, persons: list[str], stamps: dict[str, list[float]]) -> None:
        """Clock-in/out and labour bookings of the plant's people, in plant seconds (a
        person the MES does not know has none)."""
        admin = self._admin_client()
        for person in persons:
            try:
                labour = self._timed(admin.person_labour, person)
            except MesClientError:
                continue
            for a in labour.attendance:
                for at in (a.clock_in, a.clock_out):
                    stamps.setdefault("attendance", []).extend(self._seconds_of(at))
            for b in labour.bookings:
                for at in (b.started_at, b.ended_at):
                    stamps.setdefault("labour bookings", []).extend(self._seconds_of(at))

    def _seconds_of(self, at: datetime | None) -> list[float]:
        seconds = self._plant_seconds(at)
        return [] if seconds is None else [seconds]

    def _plant_seconds(self, at: datetime | None) -> float | None:
        """A time the MES recorded, as plant seconds (the inverse of ``plant_time``)."""
        if at is None:
            return None
        at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return round((at - self.plant_start).total_seconds(), 3)

    def _date(self, d: date) -> date:
        return d + self.date_shift

    def _plant_date(self, t: float) -> date:
        return self._date(self.plant_time(t).date())

    def _seq(self, order: str, segment: str) -> int:
        product = self._order_product.get(order, "")
        seq = self._segments.get(product, {}).get(segment)
        if seq is None:
            raise KeyError(f"job order {order}: no operation {segment!r} in its routing")
        return seq

    # -- SystemUnderTest ----------------------------------------------------------------

    def describe(self) -> str:
        if self.order_channel == "b2mml":
            return (
                f"mes_core at {self.url}, orders and actuals in B2MML V0701 only "
                "(adapter twin.scenario.sut_mes_core, orders: b2mml)"
            )
        return f"mes_core REST API at {self.url} (adapter twin.scenario.sut_mes_core)"

    def version(self) -> str:
        try:
            health = self._timed(MesClient(self.url, timeout=5).health)
        except (SutUnavailable, MesClientError):
            return "unknown"
        return str(health.get("version", "mes_core"))

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with MesClient(self.url, timeout=2) as probe:
                    probe.health()
                # A restarted MES forgets nothing but our sessions may be stale: log in anew.
                self._admin = None
                self._collector = None
                self._people.clear()
                return
            except (httpx.TransportError, httpx.TimeoutException, MesClientError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.2)
        raise SutUnavailable(f"no answer from {self.url} within {timeout:g} s ({last})")

    def master_data(self, plant: PlantModel) -> MasterData:
        """The plant model as mes_core master data (dates on the plant's timeline)."""
        far = self._date(plant.plant.start.date()) + timedelta(days=3650)
        equipment: list[dict[str, Any]] = [
            {"code": plant.plant.code, "name": plant.plant.name, "level": "site"}
        ]
        for line in plant.lines:
            equipment.append(
                {"code": line.code, "name": line.name, "level": "line", "parent": plant.plant.code}
            )
            for wu in line.work_units:
                equipment.append(
                    {
                        "code": wu.code,
                        "name": wu.name,
                        "level": "work_unit",
                        "parent": line.code,
                        "equipment_class": wu.equipment_class,
                        "calibration_due": far.isoformat(),
                    }
                )
        materials = [{"code": m.id, "name": m.name, "unit": m.unit} for m in plant.materials]
        routings = []
        for product in plant.products:
            self._product_material[product.id] = product.material
            self._segments[product.id] = {s.id: i + 1 for i, s in enumerate(product.segments)}
            for s in product.segments:
                if s.output_material is not None:
                    self._output_material[(product.id, s.id)] = s.output_material
            routings.append(
                {
                    "code": product.id,
                    "name": product.name,
                    "product": product.material,
                    "segments": [
                        {
                            "sequence": i + 1,
                            "name": seg.id,
                            "equipment_class": seg.equipment_class,
                            "pru_seconds": seg.standard_run_time,
                            "skill": seg.skill,
                            # Every line of the twin is a flow line: units move on one by
                            # one, so each operation runs alongside its predecessor once
                            # that has made good units (ISA-95 "start after previous
                            # segment starts"); rule 1 still refuses a start before that.
                            "allow_partial": True,
                            "materials": [
                                {"material": r.material, "quantity_per_unit": r.quantity_per_unit}
                                for r in seg.materials
                            ]
                            + [  # the previous operation's intermediate lot, taken in whole
                                {"material": m, "quantity_per_unit": 1.0}
                                for m in intake_of(product, seg.id)
                            ],
                            "characteristics": [
                                {
                                    "name": c.name,
                                    "lsl": c.lsl,
                                    "target": c.target,
                                    "usl": c.usl,
                                    "unit": c.unit,
                                    "sampling_frequency": c.sampling.every_units or 1,
                                }
                                for c in seg.inspections
                            ],
                        }
                        for i, seg in enumerate(product.segments)
                    ],
                }
            )
        persons = []
        for op in plant.operators:
            roles = {ROLE_MAP.get(r, "operator") for r in op.roles}
            if self.backdating:
                roles.add(BACKDATE)
            persons.append(
                {
                    "code": op.id,
                    "name": op.name,
                    "roles": sorted(roles),
                    "password": self.passwords.get(op.id, DEFAULT_PASSWORD),
                    "certifications": [
                        {"skill": c.skill, "valid_until": self._date(c.expires).isoformat()}
                        for c in op.certifications
                    ],
                }
            )
        lots = []
        for lot in plant.material_lots:
            item: dict[str, Any] = {
                "code": lot.id,
                "material": lot.material,
                "quantity": lot.quantity,
                "status": lot.status,
            }
            if lot.expiry is not None:
                end = self._date(lot.expiry) + timedelta(days=1)  # valid through its date
                item["expires_at"] = datetime(end.year, end.month, end.day, tzinfo=UTC).isoformat()
            lots.append(item)
        for m in plant.materials:
            if m.unlimited_supply:
                lots.append({"code": f"{m.id}-BULK", "material": m.id, "quantity": 1e9})
        return MasterData.model_validate(
            {
                "equipment": equipment,
                "materials": materials,
                "routings": routings,
                "persons": persons,
                "lots": lots,
            }
        )

    def load_master_data(self, plant: PlantModel) -> None:
        try:
            self.load_plant(plant)
        except MesClientError as exc:
            if exc.status != 409:  # already loaded (a restarted run on the same database)
                raise
            self._load_calendars(plant)

    def load_plant(self, plant: PlantModel) -> MasterDataResult:
        """Load the plant's master data (equipment, materials, routings with their bills of
        materials, people, lots) and its shift calendars; what the MES created. A plant
        loaded before is refused (``MesClientError`` 409) and left as it is."""
        self._plant = plant
        admin = self._admin_client()
        result: MasterDataResult = self._timed(admin.load_master_data, self.master_data(plant))
        self._load_calendars(plant)
        return result

    def _load_calendars(self, plant: PlantModel) -> None:
        """Each line follows the shift calendar of the people who staff it (planned busy
        time, ISO 22400-2 PBT, comes from the MES's calendar, never from the machine)."""
        admin = self._admin_client()
        days = {d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}
        for cal in plant.shift_calendars:
            body = CalendarIn.model_validate(
                {
                    "timezone": "UTC",
                    "shifts": [
                        {
                            "name": sh.name,
                            "start": sh.start.isoformat(),
                            "end": sh.end.isoformat(),
                            "weekdays": sorted(days[d] for d in sh.days),
                            "breaks": [
                                {"start": b.start.isoformat(), "end": b.end.isoformat()}
                                for b in sh.breaks
                            ],
                        }
                        for sh in cal.shifts
                    ],
                }
            )
            self._timed(admin.put_calendar, cal.id, body)
        for line in plant.lines:
            staff = [o for o in plant.operators if not o.lines or line.code in o.lines]
            if staff:
                self._timed(admin.assign_calendar, line.code, staff[0].calendar)

    def send_order(self, order: OrderRequest) -> Answer:
        self._order_product[order.id] = order.product
        answer = self._send_b2mml(order) if self.order_channel == "b2mml" else self._send(order)
        if answer.accepted:
            self._sent[order.id] = order.quantity
        return answer

    def _send_b2mml(self, order: OrderRequest) -> Answer:
        """ERP sends the order as a ProcessOperationsSchedule with RequestState Released."""
        if self._plant is None:
            raise RuntimeError("send_order before load_master_data: the plant is unknown")
        document = b2mml_channel.build_schedule(
            [order], self._plant, schedule_id=f"MESTWIN-{order.id}", released=True
        )
        return self._answer(self._admin_client().import_schedule, document)

    def _send(self, order: OrderRequest) -> Answer:
        admin = self._admin_client()
        due = self.plant_start + timedelta(seconds=order.due) if order.due else None
        create = JobOrderCreate(
            code=order.id,
            product=self._product_material.get(order.product, order.product),
            routing=order.product,
            quantity=order.quantity,
            due_at=due,
        )
        for step in (
            lambda: admin.create_job_order(create),
            lambda: admin.release_job_order(order.id),
        ):
            answer = self._answer(step)
            if not answer.accepted:
                return answer
        return Answer(True)

    def dispatch_order(self, order: str, work_units: dict[str, str]) -> Answer:
        """Supervisor dispatches ``order``, assigning work units per segment id."""
        mapping = {self._seq(order, seg): wu for seg, wu in work_units.items()}
        client = self._supervisor_client()
        if isinstance(client, Answer):
            return client
        return self._answer(client.dispatch_job_order, order, mapping)

    def _supervisor_client(self) -> MesClient | Answer:
        """The scenario's supervisor acts in person; without one the bench's admin does."""
        if self.supervisor is None:
            return self._admin_client()
        return self._as(self.supervisor)

    def start_operation(
        self, order: str, segment: str, person: str, work_unit: str, at: float
    ) -> Answer:
        client = self._as(person)
        if isinstance(client, Answer):
            return client
        try:
            seq = self._seq(order, segment)
        except KeyError as exc:
            return Answer(False, "NOT_FOUND", str(exc), 404)
        return self._answer(
            client.start_operation,
            order,
            seq,
            work_unit=work_unit or None,
            operators=[person],
            occurred_at=self.plant_time(at),
        )

    def complete_operation(
        self, order: str, segment: str, person: str, at: float, output_lot: str | None
    ) -> Answer:
        client = self._as(person)
        if isinstance(client, Answer):
            return client
        seq = self._seq(order, segment)
        # An intermediate lot (the routing's output_material) is of that material; the last
        # operation's lot is of the product's.
        material = self._output_material.get((self._order_product.get(order, ""), segment))
        lot = OutputLot(code=output_lot, material=material) if output_lot else None
        if output_lot and material is None:
            self._produced[order] = output_lot
        elif output_lot and output_lot not in self._intermediate[order]:
            self._intermediate[order].append(output_lot)
        return self._answer(
            client.complete_operation, order, seq, output_lot=lot, occurred_at=self.plant_time(at)
        )

    def consume_lot(
        self, order: str, segment: str, lot: str, quantity: float, person: str, at: float
    ) -> Answer:
        client = self._as(person)
        if isinstance(client, Answer):
            return client
        try:
            seq = self._seq(order, segment)
        except KeyError as exc:
            return Answer(False, "NOT_FOUND", str(exc), 404)
        return self._answer(
            client.consume_lot, order, seq, lot, quantity, occurred_at=self.plant_time(at)
        )

    # -- LabourCapability: attendance and labour on the plant's timeline -----------------

    def clock_in(self, person: str, at: float) -> Answer:
        client = self._as(person)
        if isinstance(client, Answer):
            return client
        return self._answer(client.clock_in, occurred_at=self.plant_time(at))

    def clock_out(self, person: str, at: float) -> Answer:
        client = self._as(person)
        if isinstance(client, Answer):
            return client
        return self._answer(client.clock_out, occurred_at=self.plant_time(at))

    def start_labour(self, order: str, segment: str, person: str, at: float) -> Answer:
        return self._labour(order, segment, person, at, start=True)

    def stop_labour(self, order: str, segment: str, person: str, at: float) -> Answer:
        return self._labour(order, segment, person, at, start=False)

    def _labour(self, order: str, segment: str, person: str, at: float, *, start: bool) -> Answer:
        client = self._as(person)
        if isinstance(client, Answer):
            return client
        try:
            seq = self._seq(order, segment)
        except KeyError as exc:
            return Answer(False, "NOT_FOUND", str(exc), 404)
        call = client.start_labour if start else client.stop_labour
        return self._answer(call, order, seq, occurred_at=self.plant_time(at))

    def labour_records(self, persons: list[str], orders: list[str]) -> LabourHours:
        """Attendance per person (``GET /labour/persons``), labour per job order and, summed
        over the orders' operations, per person (``GET /labour/job-orders``)."""
        admin = self._admin_client()
        out = LabourHours()
        for person in persons:
            try:
                hours = self._timed(admin.person_labour, person).attendance_hours
            except MesClientError:
                continue  # a person the MES does not know has no attendance there
            if hours > 0:
                out.attendance[person] = hours
        for order in orders:
            try:
                labour = self._timed(admin.job_order_labour, order)
            except MesClientError:
                continue
            if labour.hours > 0:
                out.by_order[order] = labour.hours
            for op in labour.operations:
                for person, hours in op.hours_by_person.items():
                    out.by_person[person] = out.by_person.get(person, 0.0) + hours
        return out

    def dispose(
        self,
        target: str,
        person: str,
        password: str,
        decision: str,
        reason: str,
        at: float | None = None,
    ) -> Answer:
        client = self._as(person)
        if isinstance(client, Answer):
            return client
        number = target.removeprefix("nc:")
        return self._answer(
            client.dispose_nonconformance,
            number,
            decision,
            password=password,
            meaning="approval",
            reason=reason,
            occurred_at=None if at is None else self.plant_time(at),
        )

    def set_calibration_due(self, work_unit: str, due_at: float) -> Answer:
        from mes_core.schemas.masterdata import EquipmentUpdate

        update = EquipmentUpdate(calibration_due=self._plant_date(due_at))
        client = self._supervisor_client()
        if isinstance(client, Answer):
            return client
        return self._answer(client.update_equipment, work_unit, update)

    def performance(self) -> b2mml_channel.Performance:
        """The actuals of every job order the MES accepted from the bench, as they stand,
        read from ProcessOperationsPerformance documents (a few hundred orders each)."""
        admin = self._admin_client()
        merged = b2mml_channel.Performance("")
        names = list(self._sent)
        for i in range(0, len(names), PERFORMANCE_CHUNK):
            document = self._timed(
                admin.export_performance, names[i : i + PERFORMANCE_CHUNK], include_open=True
            )
            merged.orders.update(b2mml_channel.parse_performance(document).orders)
        return merged

    def _views(self, performance: b2mml_channel.Performance) -> list[OrderView]:
        out = []
        for number, actual in performance.orders.items():
            product = self._order_product.get(number, "")
            ops = [
                OperationView(
                    s.process_segment,
                    s.operation_state,
                    s.good,
                    s.scrap,
                    s.equipment[0] if s.equipment else None,
                )
                for s in actual.segments
            ]
            out.append(
                OrderView(
                    id=number,
                    product=self._product_material.get(product, product),
                    quantity=self._sent.get(number, 0),
                    state=actual.state,
                    good=actual.record.good,
                    scrap=actual.record.scrap,
                    operations=ops,
                )
            )
        return out

    def orders(self) -> list[OrderView]:
        if self.order_channel == "b2mml":
            return self._views(self.performance())
        admin = self._admin_client()
        out: list[OrderView] = []
        offset = 0
        while True:
            page: list[JobOrderOut] = self._timed(admin.list_job_orders, limit=200, offset=offset)
            for jo in page:
                ops = [
                    OperationView(o.name, o.state, o.good, o.scrap, o.work_unit)
                    for o in sorted(jo.operations, key=lambda o: o.sequence)
                ]
                last = ops[-1] if ops else None
                out.append(
                    OrderView(
                        id=jo.code,
                        product=jo.product,
                        quantity=int(jo.quantity),
                        state=jo.state,
                        good=last.good if last else 0.0,
                        scrap=sum(o.scrap for o in ops),
                        operations=ops,
                    )
                )
            if len(page) < 200:
                return out
            offset += 200

    def lot_state(self, lot: str) -> str | None:
        try:
            return str(self._timed(self._admin_client().get_lot, lot).status)
        except MesClientError:
            return None

    def held(self) -> list[str]:
        """Open nonconformances (each holds lots and/or job orders until disposed)."""
        ncs = self._timed(self._admin_client().nonconformances, state="open")
        return [f"nc:{nc.number}" for nc in ncs]

    def holds_of(self, target: str) -> list[str]:
        """What an open nonconformance holds (job orders and lots), for the report."""
        number = target.removeprefix("nc:")
        try:
            nc = self._timed(self._admin_client().get_nonconformance, number)
        except MesClientError:
            return []
        return [f"job_order:{j}" for j in nc.held_job_orders] + [
            f"lot:{lot}" for lot in nc.held_lots
        ]

    def hold_reason(self, target: str) -> tuple[str, str] | None:
        """The nonconformance's source (``out_of_spec``, ``spc``, ``manual``) and its
        description: mes_core's own evidence for the hold."""
        try:
            nc = self._timed(self._admin_client().get_nonconformance, target.removeprefix("nc:"))
        except MesClientError:
            return None
        return nc.source, nc.description

    def audit_entries(self, action: str, object_ref: str | None = None) -> list[AuditRecord]:
        return [
            AuditRecord(e.entry_id, e.action, e.object_ref, e.at, e.entry_hash)
            for e in self._audit_pages(action, object_ref)
        ]

    def _audit_pages(self, action: str, object_ref: str | None) -> list[_AuditEntry]:
        admin = self._admin_client()
        out: list[_AuditEntry] = []
        after = 0
        while True:
            page = self._timed(
                admin.audit_entries, after_id=after, limit=500, action=action, object=object_ref
            )
            out.extend(
                _AuditEntry(str(e.id), e.action, e.object, e.at.isoformat(), e.hash, e.detail)
                for e in page
            )
            if len(page) < 500:
                return out
            after = page[-1].id

    def signatures(self) -> list[SignatureRecord]:
        # mes_core signs QA dispositions (21 CFR 11.50/11.70) and records each signature's
        # manifestation, meaning and binding hash in the disposition's audit entry.
        return [
            SignatureRecord(
                e.entry_id,
                e.object_ref,
                str(e.detail.get("meaning", "")),
                str(e.detail.get("signature", "")),
                str(e.detail["binding_hash"]) if "binding_hash" in e.detail else None,
            )
            for e in self._audit_pages("nonconformance.disposed", None)
            if "signature" in e.detail
        ]

    def spc_rules_fired(self, characteristic: str) -> dict[int, int] | None:
        admin = self._admin_client()
        chars = [c for c in self._timed(admin.characteristics) if c.name == characteristic]
        if not chars:
            return None
        fired: dict[int, int] = {}
        for char in chars:
            for m in self._timed(admin.measurements, char.id, limit=10_000):
                for rule in m.spc_rules:
                    fired[rule] = fired.get(rule, 0) + 1
        return fired

    def refusals(self) -> list[Refusal]:
        admin = self._admin_client()
        out: list[Refusal] = []
        after = 0
        while True:
            page = self._timed(admin.audit_entries, after_id=after, limit=500, action="refused")
            for e in page:
                out.append(
                    Refusal(
                        str(e.detail.get("rule", "")),
                        e.object,
                        str(e.detail.get("message", "")),
                        e.at.isoformat(),
                        entry_id=str(e.id),
                        entry_hash=e.hash,
                    )
                )
            if len(page) < 500:
                return out
            after = page[-1].id

    def records(self, plant: PlantModel, until: float) -> Records:
        out = Records()
        unit_counts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        if self.order_channel == "b2mml":
            performance = self.performance()
            out.job_orders = performance.records()
            out.genealogy = performance.genealogy()
            out.genealogy_at = performance.genealogy_at()
            # SegmentResponse ActualStartTime / ActualEndTime: the times the MES stored.
            out.operation_times = performance.operation_times(self.plant_start)
            # Consumptions carry no time in a performance document: not read here.
            stamps: dict[str, list[float]] = defaultdict(list)
            stamps["job order start/end"] = performance.job_order_times(self.plant_start)
            self._quality_stamps(stamps)
            out.record_times = dict(stamps)
            for actual in performance.orders.values():
                for seg in actual.segments:
                    for code in seg.equipment:
                        unit_counts[code][0] += seg.good
                        unit_counts[code][1] += seg.scrap
        else:
            self._rest_order_records(out, unit_counts)
        if out.record_times is not None:
            self._labour_stamps([o.id for o in plant.operators], out.record_times)
        self._unit_records(plant, until, out, unit_counts)
        out.labour = self.labour_records([o.id for o in plant.operators], sorted(self._sent))
        return out

    def _rest_order_records(self, out: Records, unit_counts: dict[str, list[float]]) -> None:
        admin = self._admin_client()
        times = out.operation_times = {}
        edges_at: set[tuple[str, str, str]] = set()
        out.genealogy_at = edges_at  # each edge at the work unit of the operation it is booked on
        stamps: dict[str, list[float]] = defaultdict(list)
        for view in self.orders():
            consumed: dict[str, float] = defaultdict(float)
            jo = self._timed(admin.get_job_order, view.id)
            for at in (jo.started_at, jo.ended_at):
                stamps["job order start/end"].extend(self._seconds_of(at))
            for op in jo.operations:
                if op.started_at is not None or op.ended_at is not None:
                    times[(jo.code, op.name)] = OperationTimes(
                        self._plant_seconds(op.started_at), self._plant_seconds(op.ended_at)
                    )
                if op.work_unit:
                    unit_counts[op.work_unit][0] += op.good
                    unit_counts[op.work_unit][1] += op.scrap
                for c in op.consumed:
                    consumed[str(c.get("lot"))] += float(c.get("quantity", 0.0))
                    at = datetime.fromisoformat(str(c["at"])) if c.get("at") else None
                    stamps["consumptions"].extend(self._seconds_of(at))
            produced: dict[str, float] = {}
            out_lot = self._produced.get(view.id, f"{view.id}-OUT")
            if view.state in ("completed", "closed"):
                try:
                    for code in self._intermediate.get(view.id, []):  # granulate, blend
                        made = self._timed(admin.get_lot, code)
                        produced[made.code] = made.initial_quantity
                    lot = self._timed(admin.get_lot, out_lot)
                    produced[lot.code] = lot.initial_quantity
                    # Every level: through the intermediate lots to the raw materials.
                    trace = self._timed(admin.genealogy, lot.code, "backward", None)
                    units = {op.sequence: op.work_unit for op in jo.operations}
                    for edge in trace.edges:
                        out.genealogy.add((edge.parent, edge.child))
                        edges_at.add((edge.parent, edge.child, units.get(edge.operation) or "?"))
                except MesClientError:
                    pass
            out.job_orders[view.id] = OrderRecord(
                good=int(view.good),
                scrap=int(view.scrap),
                lots_consumed=dict(consumed),
                lots_produced=produced,
            )
        self._quality_stamps(stamps)
        out.record_times = dict(stamps)

    def _unit_records(
        self,
        plant: PlantModel,
        until: float,
        out: Records,
        unit_counts: dict[str, list[float]],
    ) -> None:
        admin = self._admin_client()
        start = self.plant_start
        end = self.plant_start + timedelta(seconds=until)

        def unit(code: str) -> tuple[Any, Any]:
            report = self._timed(admin.work_unit_states, code, start, end)
            try:
                k = self._timed(admin.work_unit_kpis, code, start, end, "plant")
            except MesClientError:
                k = None
            return report, k

        codes = [wu.code for wu in plant.all_work_units()]
        # A few at a time: the MES answers each from its database (hundreds of work units
        # on the reference plant), the KPIs are kept for ``kpis`` (same window).
        with ThreadPoolExecutor(max_workers=REPORT_CONCURRENCY) as pool:
            answers = dict(zip(codes, pool.map(unit, codes), strict=True))
        for code, (report, k) in answers.items():
            # What the MES recorded the work unit made: its plant counts (work units that
            # run no operation, e.g. a conveyor, still count), falling back to operations.
            if k is not None:
                self._kpi_reports[("work_unit", code, start, end)] = k
                good, scrap = k.good_quantity, k.scrap_quantity
            else:
                good, scrap = unit_counts.get(code, [0.0, 0.0])
            out.work_units[code] = UnitRecord(
                good=int(good),
                scrap=int(scrap),
                state_seconds={k: round(v, 3) for k, v in report.seconds_by_state.items() if v > 0},
            )

    def kpis(self, scope: str, ident: str, start: float, end: float) -> Kpis | None:
        admin = self._admin_client()
        t0 = self.plant_start + timedelta(seconds=start)
        t1 = self.plant_start + timedelta(seconds=end)
        fn = admin.line_kpis if scope == "line" else admin.work_unit_kpis
        k = self._kpi_reports.get((scope, ident, t0, t1))
        if k is None:
            try:
                k = self._timed(fn, ident, t0, t1)
            except MesClientError:
                return None
        return Kpis(
            availability=k.availability,
            performance=k.effectiveness,
            quality=k.quality_ratio,
            oee=k.oee,
            throughput_per_hour=k.throughput_per_hour,
            good=k.good_quantity,
            scrap=k.scrap_quantity,
            scrap_ratio=k.scrap_ratio,
            time_elements=k.time.model_dump(),
            basis=_line_basis(k),
        )

    def post_events(self, events: list[PlantEvent]) -> IngestResult:
        if self._collector is None:
            admin = self._admin_client()
            key = self._timed(admin.create_api_key, f"{COLLECTOR_KEY}{time.time_ns()}")
            self._collector = MesClient(self.url, api_key=key.api_key, timeout=self.timeout)
        result: IngestResult = self._timed(self._collector.ingest, events)
        self._ingested = getattr(self, "_ingested", 0) + result.accepted
        self._duplicates = getattr(self, "_duplicates", 0) + result.duplicates
        return result

    def ingest_stats(self) -> IngestStats:
        """What the MES itself recorded: its audit trail has one ``plant_events.ingested``
        entry per batch with the events accepted and refused as duplicates. (Falls back to
        the answers the collector got when the audit trail cannot be read.)"""
        admin = self._admin_client()
        accepted = duplicates = 0
        after = 0
        try:
            while True:
                page = self._timed(
                    admin.audit_entries,
                    after_id=after,
                    limit=AUDIT_PAGE,
                    action="plant_events.ingested",
                )
                for e in page:
                    if e.actor.removeprefix("api_key:").startswith(COLLECTOR_KEY):
                        accepted += int(e.detail.get("accepted", 0))
                        duplicates += int(e.detail.get("duplicates", 0))
                if len(page) < AUDIT_PAGE:
                    return IngestStats(accepted, duplicates)
                after = page[-1].id
        except MesClientError:
            return IngestStats(getattr(self, "_ingested", 0), getattr(self, "_duplicates", 0))

    def latencies_ms(self) -> list[float]:
        return list(self._latencies)

    def close(self) -> None:
        for client in (self._admin, self._collector, *self._people.values()):
            if client is not None:
                client.close()


def _line_basis(k: KpiReport) -> str:
    """What mes_core measures a line at (empty for a work unit)."""
    if k.level != "line":
        return ""
    out = ", ".join(k.output_work_units) or "none yet"
    pace = k.constraint_work_unit or "none"
    return f"good = what left the line at {out}; time, PRU and pace of its constraint {pace}"
