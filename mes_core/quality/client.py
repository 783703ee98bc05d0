"""Client methods for the quality, KPI, labour and ERP endpoints.

Mixed into :class:`mes_core.client.MesClient` (sync) and
:class:`mes_core.client.AsyncMesClient` (async), so callers keep one client::

    mes = MesClient(url).login("qa1", "secret")
    result = mes.record_measurement("PO-1", 10, "fill_volume", 507.2)
    mes.dispose_nonconformance(result.nonconformance, "release", password="secret",
                               meaning="approval", reason="gauge error, retest in spec")

This module must not import :mod:`mes_core.client` at import time (the client imports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from mes_core.erp.schemas import ImportOut
from mes_core.kpi.schemas import CalendarIn, CalendarOut, KpiReport, StateReport
from mes_core.labour.schemas import AttendanceOut, BookingOut, JobOrderLabour, PersonLabour
from mes_core.quality.schemas import (
    CharacteristicOut,
    LimitsIn,
    LimitsOut,
    MeasurementOut,
    MeasurementResultOut,
    NonconformanceOut,
)

XML_HEADERS = {"Content-Type": "application/xml", "Accept": "application/xml"}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _who(person: str | None, occurred_at: datetime | None) -> dict[str, Any]:
    """A labour request's body: the person acted for and, if stated, when."""
    body: dict[str, Any] = {"person": person}
    if occurred_at is not None:
        body["occurred_at"] = occurred_at.isoformat()
    return body


def _measurement_body(
    job_order: str,
    operation: int,
    characteristic: str,
    value: float,
    lot: str | None,
    measured_at: datetime | None,
) -> dict[str, Any]:
    return {
        "job_order": job_order,
        "operation": operation,
        "characteristic": characteristic,
        "value": value,
        "lot": lot,
        "measured_at": _iso(measured_at),
    }


def _raise_for(response: httpx.Response) -> None:
    from mes_core.client.errors import raise_for_response

    raise_for_response(response)


class QualityClientMixin:
    """Synchronous methods (mixed into ``MesClient``)."""

    if TYPE_CHECKING:
        _http: httpx.Client

        def _headers(self) -> dict[str, str]: ...

        def _call(
            self,
            method: str,
            path: str,
            out: Any,
            *,
            body: Any = None,
            params: dict[str, Any] | None = None,
        ) -> Any: ...

    # -------------------------------------------------------------- quality

    def characteristics(self, routing: str | None = None) -> list[CharacteristicOut]:
        return self._call(
            "GET",
            "/api/v1/quality/characteristics",
            list[CharacteristicOut],
            params={"routing": routing},
        )

    def set_spc_limits(self, characteristic_id: int, limits: LimitsIn) -> LimitsOut:
        return self._call(
            "PUT",
            f"/api/v1/quality/characteristics/{characteristic_id}/limits",
            LimitsOut,
            body=limits.model_dump(mode="json"),
        )

    def measurements(self, characteristic_id: int, limit: int = 200) -> list[MeasurementOut]:
        return self._call(
            "GET",
            f"/api/v1/quality/characteristics/{characteristic_id}/measurements",
            list[MeasurementOut],
            params={"limit": limit},
        )

    def record_measurement(
        self,
        job_order: str,
        operation: int,
        characteristic: str,
        value: float,
        *,
        lot: str | None = None,
        measured_at: datetime | None = None,
    ) -> MeasurementResultOut:
        body = _measurement_body(job_order, operation, characteristic, value, lot, measured_at)
        return self._call("POST", "/api/v1/quality/measurements", MeasurementResultOut, body=body)

    def nonconformances(
        self, state: str | None = None, job_order: str | None = None
    ) -> list[NonconformanceOut]:
        return self._call(
            "GET",
            "/api/v1/quality/nonconformances",
            list[NonconformanceOut],
            params={"state": state, "job_order": job_order},
        )

    def get_nonconformance(self, number: str) -> NonconformanceOut:
        return self._call("GET", f"/api/v1/quality/nonconformances/{number}", NonconformanceOut)

    def open_nonconformance(
        self, description: str, *, job_order: str | None = None, lots: Sequence[str] = ()
    ) -> NonconformanceOut:
        body = {"description": description, "job_order": job_order, "lots": list(lots)}
        return self._call("POST", "/api/v1/quality/nonconformances", NonconformanceOut, body=body)

    def dispose_nonconformance(
        self,
        number: str,
        disposition: str,
        *,
        password: str,
        meaning: str,
        reason: str,
        quantity: float | None = None,
        occurred_at: datetime | None = None,
    ) -> NonconformanceOut:
        """Dispose under an electronic signature (quality role; the password again)."""
        body = {
            "disposition": disposition,
            "password": password,
            "meaning": meaning,
            "reason": reason,
            "quantity": quantity,
        }
        if occurred_at is not None:  # when it was signed (role backdate only)
            body["occurred_at"] = occurred_at.isoformat()
        return self._call(
            "POST",
            f"/api/v1/quality/nonconformances/{number}/disposition",
            NonconformanceOut,
            body=body,
        )

    # -------------------------------------------------------------- KPIs

    def put_calendar(self, code: str, calendar: CalendarIn) -> CalendarOut:
        return self._call(
            "PUT",
            f"/api/v1/kpi/calendars/{code}",
            CalendarOut,
            body=calendar.model_dump(mode="json"),
        )

    def get_calendar(self, code: str) -> CalendarOut:
        return self._call("GET", f"/api/v1/kpi/calendars/{code}", CalendarOut)

    def assign_calendar(self, equipment: str, calendar: str) -> CalendarOut:
        return self._call(
            "PUT",
            f"/api/v1/kpi/equipment/{equipment}/calendar",
            CalendarOut,
            body={"calendar": calendar},
        )

    def work_unit_states(self, code: str, start: datetime, end: datetime) -> StateReport:
        return self._call(
            "GET",
            f"/api/v1/kpi/work-units/{code}/states",
            StateReport,
            params={"start": _iso(start), "end": _iso(end)},
        )

    def work_unit_kpis(
        self, code: str, start: datetime, end: datetime, quantity_source: str = "plant"
    ) -> KpiReport:
        return self._call(
            "GET",
            f"/api/v1/kpi/work-units/{code}",
            KpiReport,
            params={"start": _iso(start), "end": _iso(end), "quantity_source": quantity_source},
        )

    def line_kpis(
        self, code: str, start: datetime, end: datetime, quantity_source: str = "plant"
    ) -> KpiReport:
        return self._call(
            "GET",
            f"/api/v1/kpi/lines/{code}",
            KpiReport,
            params={"start": _iso(start), "end": _iso(end), "quantity_source": quantity_source},
        )

    # -------------------------------------------------------------- labour

    def clock_in(
        self, person: str | None = None, *, occurred_at: datetime | None = None
    ) -> AttendanceOut:
        """``occurred_at``: when (role backdate only; the same on the other labour calls)."""
        return self._call(
            "POST", "/api/v1/labour/clock-in", AttendanceOut, body=_who(person, occurred_at)
        )

    def clock_out(
        self, person: str | None = None, *, occurred_at: datetime | None = None
    ) -> AttendanceOut:
        return self._call(
            "POST", "/api/v1/labour/clock-out", AttendanceOut, body=_who(person, occurred_at)
        )

    def start_labour(
        self,
        job_order: str,
        sequence: int,
        person: str | None = None,
        *,
        occurred_at: datetime | None = None,
    ) -> BookingOut:
        return self._call(
            "POST",
            f"/api/v1/labour/job-orders/{job_order}/operations/{sequence}/start",
            BookingOut,
            body=_who(person, occurred_at),
        )

    def stop_labour(
        self,
        job_order: str,
        sequence: int,
        person: str | None = None,
        *,
        occurred_at: datetime | None = None,
    ) -> BookingOut:
        return self._call(
            "POST",
            f"/api/v1/labour/job-orders/{job_order}/operations/{sequence}/stop",
            BookingOut,
            body=_who(person, occurred_at),
        )

    def job_order_labour(self, job_order: str) -> JobOrderLabour:
        return self._call("GET", f"/api/v1/labour/job-orders/{job_order}", JobOrderLabour)

    def person_labour(self, person: str) -> PersonLabour:
        return self._call("GET", f"/api/v1/labour/persons/{person}", PersonLabour)

    # -------------------------------------------------------------- ERP (B2MML)

    def import_schedule(self, document: bytes) -> ImportOut:
        """POST a ProcessOperationsSchedule; refusals raise with the reason."""
        response = self._http.post(
            "/api/v1/erp/schedules", content=document, headers={**self._headers(), **XML_HEADERS}
        )
        _raise_for(response)
        return ImportOut.model_validate(response.json())

    def export_performance(
        self,
        job_orders: Sequence[str] = (),
        since: datetime | None = None,
        *,
        include_open: bool = False,
    ) -> bytes:
        """The ProcessOperationsPerformance XML of completed job orders (with
        ``include_open``: of job orders in any state, as they stand)."""
        params: dict[str, Any] = {"job_order": list(job_orders)} if job_orders else {}
        if since is not None:
            params["since"] = since.isoformat()
        if include_open:
            params["include_open"] = "true"
        response = self._http.get(
            "/api/v1/erp/performance", params=params, headers={**self._headers(), **XML_HEADERS}
        )
        _raise_for(response)
        return response.content


class AsyncQualityClientMixin:
    """Asynchronous methods (mixed into ``AsyncMesClient``); same names as the sync ones."""

    if TYPE_CHECKING:
        _http: httpx.AsyncClient

        def _headers(self) -> dict[str, str]: ...

        async def _call(
            self,
            method: str,
            path: str,
            out: Any,
            *,
            body: Any = None,
            params: dict[str, Any] | None = None,
        ) -> Any: ...

    async def characteristics(self, routing: str | None = None) -> list[CharacteristicOut]:
        return await self._call(
            "GET",
            "/api/v1/quality/characteristics",
            list[CharacteristicOut],
            params={"routing": routing},
        )

    async def record_measurement(
        self,
        job_order: str,
        operation: int,
        characteristic: str,
        value: float,
        *,
        lot: str | None = None,
        measured_at: datetime | None = None,
    ) -> MeasurementResultOut:
        body = _measurement_body(job_order, operation, characteristic, value, lot, measured_at)
        return await self._call(
            "POST", "/api/v1/quality/measurements", MeasurementResultOut, body=body
        )

    async def nonconformances(
        self, state: str | None = None, job_order: str | None = None
    ) -> list[NonconformanceOut]:
        return await self._call(
            "GET",
            "/api/v1/quality/nonconformances",
            list[NonconformanceOut],
            params={"state": state, "job_order": job_order},
        )

    async def get_nonconformance(self, number: str) -> NonconformanceOut:
        return await self._call(
            "GET", f"/api/v1/quality/nonconformances/{number}", NonconformanceOut
        )

    async def dispose_nonconformance(
        self,
        number: str,
        disposition: str,
        *,
        password: str,
        meaning: str,
        reason: str,
        quantity: float | None = None,
        occurred_at: datetime | None = None,
    ) -> NonconformanceOut:
        body = {
            "disposition": disposition,
            "password": password,
            "meaning": meaning,
            "reason": reason,
            "quantity": quantity,
        }
        if occurred_at is not None:  # when it was signed (role backdate only)
            body["occurred_at"] = occurred_at.isoformat()
        return await self._call(
            "POST",
            f"/api/v1/quality/nonconformances/{number}/disposition",
            NonconformanceOut,
            body=body,
        )

    async def work_unit_states(self, code: str, start: datetime, end: datetime) -> StateReport:
        return await self._call(
            "GET",
            f"/api/v1/kpi/work-units/{code}/states",
            StateReport,
            params={"start": _iso(start), "end": _iso(end)},
        )

    async def work_unit_kpis(
        self, code: str, start: datetime, end: datetime, quantity_source: str = "plant"
    ) -> KpiReport:
        return await self._call(
            "GET",
            f"/api/v1/kpi/work-units/{code}",
            KpiReport,
            params={"start": _iso(start), "end": _iso(end), "quantity_source": quantity_source},
        )

    async def line_kpis(
        self, code: str, start: datetime, end: datetime, quantity_source: str = "plant"
    ) -> KpiReport:
        return await self._call(
            "GET",
            f"/api/v1/kpi/lines/{code}",
            KpiReport,
            params={"start": _iso(start), "end": _iso(end), "quantity_source": quantity_source},
        )

    async def clock_in(
        self, person: str | None = None, *, occurred_at: datetime | None = None
    ) -> AttendanceOut:
        return await self._call(
            "POST", "/api/v1/labour/clock-in", AttendanceOut, body=_who(person, occurred_at)
        )

    async def clock_out(
        self, person: str | None = None, *, occurred_at: datetime | None = None
    ) -> AttendanceOut:
        return await self._call(
            "POST", "/api/v1/labour/clock-out", AttendanceOut, body=_who(person, occurred_at)
        )

    async def job_order_labour(self, job_order: str) -> JobOrderLabour:
        return await self._call("GET", f"/api/v1/labour/job-orders/{job_order}", JobOrderLabour)

    async def set_spc_limits(self, characteristic_id: int, limits: LimitsIn) -> LimitsOut:
        return await self._call(
            "PUT",
            f"/api/v1/quality/characteristics/{characteristic_id}/limits",
            LimitsOut,
            body=limits.model_dump(mode="json"),
        )

    async def measurements(self, characteristic_id: int, limit: int = 200) -> list[MeasurementOut]:
        return await self._call(
            "GET",
            f"/api/v1/quality/characteristics/{characteristic_id}/measurements",
            list[MeasurementOut],
            params={"limit": limit},
        )

    async def open_nonconformance(
        self, description: str, *, job_order: str | None = None, lots: Sequence[str] = ()
    ) -> NonconformanceOut:
        body = {"description": description, "job_order": job_order, "lots": list(lots)}
        return await self._call(
            "POST", "/api/v1/quality/nonconformances", NonconformanceOut, body=body
        )

    async def put_calendar(self, code: str, calendar: CalendarIn) -> CalendarOut:
        return await self._call(
            "PUT",
            f"/api/v1/kpi/calendars/{code}",
            CalendarOut,
            body=calendar.model_dump(mode="json"),
        )

    async def get_calendar(self, code: str) -> CalendarOut:
        return await self._call("GET", f"/api/v1/kpi/calendars/{code}", CalendarOut)

    async def assign_calendar(self, equipment: str, calendar: str) -> CalendarOut:
        return await self._call(
            "PUT",
            f"/api/v1/kpi/equipment/{equipment}/calendar",
            CalendarOut,
            body={"calendar": calendar},
        )

    async def start_labour(
        self,
        job_order: str,
        sequence: int,
        person: str | None = None,
        *,
        occurred_at: datetime | None = None,
    ) -> BookingOut:
        return await self._call(
            "POST",
            f"/api/v1/labour/job-orders/{job_order}/operations/{sequence}/start",
            BookingOut,
            body=_who(person, occurred_at),
        )

    async def stop_labour(
        self,
        job_order: str,
        sequence: int,
        person: str | None = None,
        *,
        occurred_at: datetime | None = None,
    ) -> BookingOut:
        return await self._call(
            "POST",
            f"/api/v1/labour/job-orders/{job_order}/operations/{sequence}/stop",
            BookingOut,
            body=_who(person, occurred_at),
        )

    async def person_labour(self, person: str) -> PersonLabour:
        return await self._call("GET", f"/api/v1/labour/persons/{person}", PersonLabour)

    async def import_schedule(self, document: bytes) -> ImportOut:
        response = await self._http.post(
            "/api/v1/erp/schedules", content=document, headers={**self._headers(), **XML_HEADERS}
        )
        _raise_for(response)
        return ImportOut.model_validate(response.json())

    async def export_performance(
        self,
        job_orders: Sequence[str] = (),
        since: datetime | None = None,
        *,
        include_open: bool = False,
    ) -> bytes:
        params: dict[str, Any] = {"job_order": list(job_orders)} if job_orders else {}
        if since is not None:
            params["since"] = since.isoformat()
        if include_open:
            params["include_open"] = "true"
        response = await self._http.get(
            "/api/v1/erp/performance", params=params, headers={**self._headers(), **XML_HEADERS}
        )
        _raise_for(response)
        return response.content
