"""The plumbing of the mes_core adapter (:mod:`twin.scenario.sut_mes_core`): its clients,
timing, the plant's clock and what it remembers of the run; the master data
(:mod:`~twin.scenario.sut_mes_core_masterdata`), the record reading
(:mod:`~twin.scenario.sut_mes_core_records`) and the quality and audit read-backs
(:mod:`~twin.scenario.sut_mes_core_readback`) build on it."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mes_core.client import MesClient, MesClientError
from plant_models.schema import PlantModel
from twin.scenario.sut import Answer, SutUnavailable

ROLE_MAP = {"operator": "operator", "qa": "quality", "supervisor": "supervisor"}
BACKDATE = "backdate"
"""The permission every simulated person gets: their actions happen at plant time."""
DEFAULT_PASSWORD = "mestwin"
COLLECTOR_KEY = "mestwin-collector-"  # API key names of the bench's collector
AUDIT_PAGE = 10_000  # the most GET /api/v1/audit returns at once
REPORT_CONCURRENCY = 4  # requests at once while reading the MES's records for the report
ORDER_CHANNELS = ("rest", "b2mml")
PERFORMANCE_CHUNK = 200  # job orders named per ProcessOperationsPerformance request


class SpcLimits(BaseModel):
    """The MES's SPC configuration of one characteristic of a routing (the ``spc_limits``
    setting): centre and sigma from process validation, or ``baseline_n`` results."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    routing: str
    characteristic: str
    centre: float | None = None
    sigma: Annotated[float, Field(gt=0)] | None = None
    baseline_n: Annotated[int, Field(ge=2)] | None = None

    @model_validator(mode="after")
    def _one_method(self) -> SpcLimits:
        if (self.centre is None) != (self.sigma is None):
            raise ValueError("give centre and sigma together")
        if (self.sigma is None) == (self.baseline_n is None):
            raise ValueError("give either centre and sigma, or baseline_n")
        return self


class MesCoreBase:
    """What every part of the mes_core adapter shares (see the module docstring)."""

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
        spc_limits: tuple[SpcLimits, ...] = (),
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
        self.spc_limits = spc_limits
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
