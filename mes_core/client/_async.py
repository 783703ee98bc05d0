"""The asynchronous MES client. GENERATED from ``_sync.py`` by ``gen_async.py``:
edit the sync client, then run ``python -m mes_core.client.gen_async``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import TypeAdapter

from mes_core.client._common import body_of as _body
from mes_core.client._common import parse_sse_line, spool_headers
from mes_core.client.errors import raise_for_response
from mes_core.quality.client import AsyncQualityClientMixin
from mes_core.schemas.audit import AuditEntryOut, AuditVerifyOut, ChangeEvent, GenealogyTrace
from mes_core.schemas.auth import ApiKeyOut, TokenOut, WhoAmI
from mes_core.schemas.execution import (
    CompleteRequest,
    ConsumeRequest,
    DispatchRequest,
    JobOrderCreate,
    JobOrderOut,
    OperationProgressOut,
    OutputLot,
    ReportRequest,
    StartRequest,
)
from mes_core.schemas.masterdata import (
    CertificationIn,
    EquipmentCreate,
    EquipmentOut,
    EquipmentUpdate,
    LotCreate,
    LotOut,
    MasterData,
    MasterDataResult,
    MaterialCreate,
    MaterialOut,
    PersonCreate,
    PersonOut,
    RoutingCreate,
    RoutingOut,
    StateChange,
    StateHistoryOut,
)
from mes_core.schemas.plant_events import (
    IngestResult,
    PlantClockOut,
    PlantEvent,
    PlantEventBatch,
)


class AsyncMesClient(AsyncQualityClientMixin):
    """Typed asynchronous client of the MES API.

    ``AsyncMesClient(url, token=...)`` or ``AsyncMesClient(url, api_key=...)``; or log in:
    ``await AsyncMesClient(url).login("op1", "secret")``. Errors raise
    :class:`~mes_core.client.errors.MesRuleViolation` (with ``.rule``) and friends.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)
        self.token = token
        self.api_key = api_key

    # -------------------------------------------------------------- plumbing

    def _headers(self) -> dict[str, str]:
        if self.api_key:
            return {"X-API-Key": self.api_key}
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        return {}

    async def _call(
        self,
        method: str,
        path: str,
        out: Any,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> Any:
        """``content``: a body already serialised as JSON, sent as it is instead of ``body``."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        sent = self._headers() if headers is None else {**self._headers(), **headers}
        if content is not None:
            sent["Content-Type"] = "application/json"
            response = await self._http.request(
                method, path, content=content, params=clean, headers=sent
            )
        else:
            response = await self._http.request(method, path, json=body, params=clean, headers=sent)
        raise_for_response(response)
        if out is None:  # 204 No Content
            return None
        return TypeAdapter(out).validate_python(response.json())

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMesClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -------------------------------------------------------------- auth

    async def login(self, username: str, password: str) -> AsyncMesClient:
        """Log in as a person (their roles apply); returns the client for chaining."""
        tok: TokenOut = await self._call(
            "POST",
            "/api/v1/auth/token",
            TokenOut,
            body={"username": username, "password": password},
        )
        self.token, self.api_key = tok.access_token, None
        return self

    async def create_api_key(
        self, name: str, role: str = "integration", expires_in_days: float | None = None
    ) -> ApiKeyOut:
        body: dict[str, Any] = {"name": name, "role": role}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        return await self._call("POST", "/api/v1/auth/api-keys", ApiKeyOut, body=body)

    async def revoke_api_key(self, name: str) -> None:
        """Revoke every API key named ``name`` (admin)."""
        await self._call("DELETE", f"/api/v1/auth/api-keys/{name}", None)

    async def revoke_tokens(self, person: str) -> None:
        """Revoke every token of ``person`` (admin): they must log in again."""
        await self._call("DELETE", f"/api/v1/auth/persons/{person}/tokens", None)

    async def logout(self) -> None:
        """Revoke this client's token (or API key): refused from now on, by every worker."""
        await self._call("POST", "/api/v1/auth/logout", None)
        self.token = self.api_key = None

    async def whoami(self) -> WhoAmI:
        return await self._call("GET", "/api/v1/auth/me", WhoAmI)

    async def health(self) -> dict[str, str]:
        return await self._call("GET", "/health", dict[str, str])

    # -------------------------------------------------------------- master data

    async def load_master_data(self, data: MasterData) -> MasterDataResult:
        return await self._call("POST", "/api/v1/master-data", MasterDataResult, body=_body(data))

    async def create_equipment(self, data: EquipmentCreate) -> EquipmentOut:
        return await self._call("POST", "/api/v1/equipment", EquipmentOut, body=_body(data))

    async def list_equipment(self, level: str | None = None) -> list[EquipmentOut]:
        return await self._call(
            "GET", "/api/v1/equipment", list[EquipmentOut], params={"level": level}
        )

    async def get_equipment(self, code: str) -> EquipmentOut:
        return await self._call("GET", f"/api/v1/equipment/{code}", EquipmentOut)

    async def update_equipment(self, code: str, data: EquipmentUpdate) -> EquipmentOut:
        return await self._call(
            "PATCH", f"/api/v1/equipment/{code}", EquipmentOut, body=_body(data)
        )

    async def set_equipment_state(self, code: str, state: str, reason: str = "") -> EquipmentOut:
        body = _body(StateChange.model_validate({"state": state, "reason": reason}))
        return await self._call("POST", f"/api/v1/equipment/{code}/state", EquipmentOut, body=body)

    async def state_history(self, code: str, limit: int = 100) -> list[StateHistoryOut]:
        return await self._call(
            "GET",
            f"/api/v1/equipment/{code}/state-history",
            list[StateHistoryOut],
            params={"limit": limit},
        )

    async def create_material(self, data: MaterialCreate) -> MaterialOut:
        return await self._call("POST", "/api/v1/materials", MaterialOut, body=_body(data))

    async def list_materials(self) -> list[MaterialOut]:
        return await self._call("GET", "/api/v1/materials", list[MaterialOut])

    async def get_material(self, code: str) -> MaterialOut:
        return await self._call("GET", f"/api/v1/materials/{code}", MaterialOut)

    async def create_lot(self, data: LotCreate) -> LotOut:
        return await self._call("POST", "/api/v1/material-lots", LotOut, body=_body(data))

    async def list_lots(
        self, status: str | None = None, material: str | None = None
    ) -> list[LotOut]:
        return await self._call(
            "GET",
            "/api/v1/material-lots",
            list[LotOut],
            params={"status": status, "material": material},
        )

    async def get_lot(self, code: str) -> LotOut:
        return await self._call("GET", f"/api/v1/material-lots/{code}", LotOut)

    async def hold_lot(self, code: str, reason: str) -> LotOut:
        return await self._call(
            "POST", f"/api/v1/material-lots/{code}/hold", LotOut, body={"reason": reason}
        )

    async def release_lot(self, code: str, reason: str) -> LotOut:
        return await self._call(
            "POST", f"/api/v1/material-lots/{code}/release", LotOut, body={"reason": reason}
        )

    async def create_routing(self, data: RoutingCreate) -> RoutingOut:
        return await self._call("POST", "/api/v1/routings", RoutingOut, body=_body(data))

    async def list_routings(self) -> list[RoutingOut]:
        return await self._call("GET", "/api/v1/routings", list[RoutingOut])

    async def get_routing(self, code: str) -> RoutingOut:
        return await self._call("GET", f"/api/v1/routings/{code}", RoutingOut)

    async def create_person(self, data: PersonCreate) -> PersonOut:
        return await self._call("POST", "/api/v1/persons", PersonOut, body=_body(data))

    async def list_persons(self) -> list[PersonOut]:
        return await self._call("GET", "/api/v1/persons", list[PersonOut])

    async def get_person(self, code: str) -> PersonOut:
        return await self._call("GET", f"/api/v1/persons/{code}", PersonOut)

    async def add_certification(self, code: str, data: CertificationIn) -> PersonOut:
        return await self._call(
            "POST", f"/api/v1/persons/{code}/certifications", PersonOut, body=_body(data)
        )

    # -------------------------------------------------------------- job orders

    async def create_job_order(self, data: JobOrderCreate) -> JobOrderOut:
        return await self._call("POST", "/api/v1/job-orders", JobOrderOut, body=_body(data))

    async def list_job_orders(
        self, state: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[JobOrderOut]:
        return await self._call(
            "GET",
            "/api/v1/job-orders",
            list[JobOrderOut],
            params={"state": state, "limit": limit, "offset": offset},
        )

    async def get_job_order(self, code: str) -> JobOrderOut:
        return await self._call("GET", f"/api/v1/job-orders/{code}", JobOrderOut)

    async def release_job_order(self, code: str) -> JobOrderOut:
        return await self._call("POST", f"/api/v1/job-orders/{code}/release", JobOrderOut)

    async def dispatch_job_order(
        self, code: str, work_units: dict[int, str] | None = None
    ) -> JobOrderOut:
        body = _body(DispatchRequest(work_units=work_units or {}))
        return await self._call(
            "POST", f"/api/v1/job-orders/{code}/dispatch", JobOrderOut, body=body
        )

    async def hold_job_order(self, code: str, reason: str) -> JobOrderOut:
        return await self._call(
            "POST", f"/api/v1/job-orders/{code}/hold", JobOrderOut, body={"reason": reason}
        )

    async def release_job_order_hold(self, code: str, reason: str) -> JobOrderOut:
        return await self._call(
            "POST", f"/api/v1/job-orders/{code}/release-hold", JobOrderOut, body={"reason": reason}
        )

    async def abort_job_order(self, code: str, reason: str) -> JobOrderOut:
        return await self._call(
            "POST", f"/api/v1/job-orders/{code}/abort", JobOrderOut, body={"reason": reason}
        )

    async def close_job_order(self, code: str) -> JobOrderOut:
        return await self._call("POST", f"/api/v1/job-orders/{code}/close", JobOrderOut)

    async def start_operation(
        self,
        code: str,
        sequence: int,
        *,
        work_unit: str | None = None,
        operators: Sequence[str] | None = None,
        occurred_at: datetime | None = None,
    ) -> JobOrderOut:
        """``occurred_at``: when it happened, for a caller allowed to backdate (role
        ``backdate``); the same on the other operator transactions."""
        req = StartRequest(
            work_unit=work_unit,
            operators=list(operators) if operators is not None else None,
            occurred_at=occurred_at,
        )
        return await self._call(
            "POST",
            f"/api/v1/job-orders/{code}/operations/{sequence}/start",
            JobOrderOut,
            body=req.model_dump(mode="json", exclude_none=True),
        )

    async def consume_lot(
        self,
        code: str,
        sequence: int,
        lot: str,
        quantity: float,
        *,
        work_unit: str | None = None,
        occurred_at: datetime | None = None,
    ) -> OperationProgressOut:
        """``work_unit``: the one of the operation's work units that drew the lot."""
        req = ConsumeRequest(
            lot=lot, quantity=quantity, work_unit=work_unit, occurred_at=occurred_at
        )
        return await self._call(
            "POST",
            f"/api/v1/job-orders/{code}/operations/{sequence}/consume",
            OperationProgressOut,
            body=_body(req),
        )

    async def report_quantities(
        self,
        code: str,
        sequence: int,
        *,
        good: float = 0,
        scrap: float = 0,
        work_unit: str | None = None,
        occurred_at: datetime | None = None,
    ) -> OperationProgressOut:
        """``work_unit``: the one of the operation's work units that made them."""
        req = ReportRequest(good=good, scrap=scrap, work_unit=work_unit, occurred_at=occurred_at)
        return await self._call(
            "POST",
            f"/api/v1/job-orders/{code}/operations/{sequence}/report",
            OperationProgressOut,
            body=_body(req),
        )

    async def complete_operation(
        self,
        code: str,
        sequence: int,
        *,
        output_lot: OutputLot | None = None,
        work_unit: str | None = None,
        occurred_at: datetime | None = None,
    ) -> JobOrderOut:
        """``work_unit``: complete it on that one of its work units only (the operation
        completes with its last)."""
        req = CompleteRequest(output_lot=output_lot, work_unit=work_unit, occurred_at=occurred_at)
        return await self._call(
            "POST",
            f"/api/v1/job-orders/{code}/operations/{sequence}/complete",
            JobOrderOut,
            body=_body(req),
        )

    # -------------------------------------------------------------- ingest, trace, audit

    async def plant_clock(self) -> PlantClockOut:
        """The plant's clock as the MES knows it (latest plant event time) and its own."""
        return await self._call("GET", "/api/v1/plant-events/clock", PlantClockOut)

    async def ingest(
        self, events: Sequence[PlantEvent], *, spool: tuple[str, int] | None = None
    ) -> IngestResult:
        """Post a batch of plant events (integration role).

        ``spool``: ``(collector, depth)``, a collector's name and the number of events it
        holds back (its spool), reported with the batch so that the MES's ``/metrics``
        shows it (``mestwin_connector_spool_depth``)."""
        batch = PlantEventBatch(events=list(events))
        headers = spool_headers(spool)
        return await self._call(
            "POST",
            "/api/v1/plant-events/batch",
            IngestResult,
            body=batch.model_dump(mode="json"),
            headers=headers,
        )

    async def ingest_json(
        self, events: Sequence[str | bytes], *, spool: tuple[str, int] | None = None
    ) -> IngestResult:
        """``ingest`` for events already serialised (each a ``PlantEvent`` as JSON, e.g.
        ``model_dump_json()``, as a collector's spool keeps them): posted as they are, in
        one ``{"events": [...]}`` body, without parsing them into models and serialising
        them again (~5 us an event). Not checked here: the MES validates the batch and
        answers 422 (``MesValidationError``) when one is malformed."""
        parts = [e if isinstance(e, bytes) else e.encode() for e in events]
        headers = spool_headers(spool)
        return await self._call(
            "POST",
            "/api/v1/plant-events/batch",
            IngestResult,
            headers=headers,
            content=b'{"events":[' + b",".join(parts) + b"]}",
        )

    async def genealogy(
        self,
        lot: str,
        direction: Literal["forward", "backward"] = "backward",
        max_depth: int | None = None,
    ) -> GenealogyTrace:
        return await self._call(
            "GET",
            f"/api/v1/genealogy/{lot}",
            GenealogyTrace,
            params={"direction": direction, "max_depth": max_depth},
        )

    async def audit_entries(
        self,
        after_id: int = 0,
        limit: int = 100,
        action: str | None = None,
        object: str | None = None,
    ) -> list[AuditEntryOut]:
        return await self._call(
            "GET",
            "/api/v1/audit",
            list[AuditEntryOut],
            params={"after_id": after_id, "limit": limit, "action": action, "object": object},
        )

    async def verify_audit(self) -> AuditVerifyOut:
        return await self._call("GET", "/api/v1/audit/verify", AuditVerifyOut)

    async def stream_events(
        self,
        *,
        after: int | None = None,
        last_event_id: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[ChangeEvent]:
        """Follow ``GET /api/v1/events/stream``: every change after ``after`` /
        ``last_event_id`` (default: from now on); stops after ``limit`` events if given."""
        headers = self._headers()
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        params = {k: v for k, v in {"after": after, "limit": limit}.items() if v is not None}
        async with self._http.stream(
            "GET", "/api/v1/events/stream", params=params, headers=headers, timeout=None
        ) as response:
            if not response.is_success:
                await response.aread()
                raise_for_response(response)
            data: list[str] = []
            async for line in response.aiter_lines():
                event = parse_sse_line(line, data)
                if event is not None:
                    yield event
