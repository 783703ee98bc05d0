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
from datetime import timedelta

import httpx

from mes_core.client import MesClient, MesClientError
from mes_core.schemas.execution import JobOrderCreate, OutputLot
from mes_core.schemas.plant_events import IngestResult, PlantEvent
from twin.scenario import b2mml_channel
from twin.scenario.sut import Answer, OrderRequest, SutUnavailable
from twin.scenario.sut_mes_core_base import COLLECTOR_KEY, ORDER_CHANNELS
from twin.scenario.sut_mes_core_masterdata import MasterDataLoading
from twin.scenario.sut_mes_core_readback import QualityReadBack
from twin.scenario.sut_mes_core_records import RecordReading

__all__ = ["COLLECTOR_KEY", "ORDER_CHANNELS", "MesCoreSut"]


class MesCoreSut(RecordReading, MasterDataLoading, QualityReadBack):
    """``SystemUnderTest`` for mes_core (see the module docstring). Master data building,
    record reading and the quality and audit read-backs live in their own modules
    (``sut_mes_core_masterdata``, ``_records``, ``_readback``) on a shared base
    (``sut_mes_core_base``)."""

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
        self,
        order: str,
        segment: str,
        person: str,
        at: float,
        output_lot: str | None,
        *,
        work_unit: str | None = None,
        lot_quantity: float | None = None,
    ) -> Answer:
        client = self._as(person)
        if isinstance(client, Answer):
            return client
        seq = self._seq(order, segment)
        # An intermediate lot (the routing's output_material) is of that material; the last
        # operation's lot is of the product's.
        material = self._output_material.get((self._order_product.get(order, ""), segment))
        lot = (
            OutputLot(code=output_lot, material=material, quantity=lot_quantity)
            if output_lot
            else None
        )
        if output_lot and material is None:
            self._produced[order] = output_lot
        elif output_lot and output_lot not in self._intermediate[order]:
            self._intermediate[order].append(output_lot)
        return self._answer(
            client.complete_operation,
            order,
            seq,
            output_lot=lot,
            work_unit=work_unit,
            occurred_at=self.plant_time(at),
        )

    def consume_lot(
        self,
        order: str,
        segment: str,
        lot: str,
        quantity: float,
        person: str,
        at: float,
        *,
        work_unit: str | None = None,
    ) -> Answer:
        client = self._as(person)
        if isinstance(client, Answer):
            return client
        try:
            seq = self._seq(order, segment)
        except KeyError as exc:
            return Answer(False, "NOT_FOUND", str(exc), 404)
        return self._answer(
            client.consume_lot,
            order,
            seq,
            lot,
            quantity,
            work_unit=work_unit,
            occurred_at=self.plant_time(at),
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

    def post_events(self, events: list[PlantEvent]) -> IngestResult:
        if self._collector is None:
            admin = self._admin_client()
            key = self._timed(admin.create_api_key, f"{COLLECTOR_KEY}{time.time_ns()}")
            self._collector = MesClient(self.url, api_key=key.api_key, timeout=self.timeout)
        result: IngestResult = self._timed(self._collector.ingest, events)
        self._ingested = getattr(self, "_ingested", 0) + result.accepted
        self._duplicates = getattr(self, "_duplicates", 0) + result.duplicates
        return result

    def latencies_ms(self) -> list[float]:
        return list(self._latencies)

    def close(self) -> None:
        for client in (self._admin, self._collector, *self._people.values()):
            if client is not None:
                client.close()
