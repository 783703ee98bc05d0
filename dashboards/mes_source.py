"""The real data source: the MES's public API through ``mes_core.client``.

Each browser session gets its own ``MesClient`` (its own token); this module turns the
client's pydantic answers into the pages' views and the client's errors into the pages'
(``MesUnavailable`` for a MES that does not answer, ``MesAuthError``, ``NotFound``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

import httpx

from dashboards.session import Connector, Credentials, MesSession
from dashboards.source import (
    DashboardSource,
    MesAuthError,
    MesUnavailable,
    NotFound,
    SourceError,
)
from dashboards.views import (
    GenealogyView,
    JobOrderView,
    LineTiles,
    LineView,
    LotLink,
    LotNode,
    OperationView,
    PlantView,
    QualityView,
    WorkUnitTile,
)
from mes_core import client as mes
from mes_core.schemas.execution import JobOrderOut
from mes_core.schemas.masterdata import EquipmentOut

T = TypeVar("T")

#: Seconds to wait for the MES: a live page would rather say "unreachable" than hang.
TIMEOUT_S = 5.0

#: Most job orders / lots read for a list (the API's own cap is 10 000).
LIST_LIMIT = 2000

#: Severity given to a work unit that is down (the Andon's stop call), on OPC UA's scale.
DOWN_SEVERITY = 800


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Turn the client's errors into the pages' ``SourceError`` family."""
    try:
        yield
    except httpx.TransportError as exc:
        raise MesUnavailable(f"no answer from {url} ({type(exc).__name__}: {exc})") from exc
    except (mes.MesAuthError, mes.MesForbidden) as exc:
        raise MesAuthError(exc.message) from exc
    except mes.MesNotFound as exc:
        raise NotFound(exc.message) from exc
    except mes.MesClientError as exc:
        if exc.status >= 500:
            raise MesUnavailable(f"{url} answered {exc.status}: {exc.message}") from exc
        raise SourceError(f"{exc.rule}: {exc.message}") from exc


def _aware(moment: datetime | None) -> datetime | None:
    """The API's times are UTC; SQLite may hand them back without a zone."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def job_order_view(order: JobOrderOut, output_lots: tuple[str, ...] = ()) -> JobOrderView:
    """A job order of the API as the Job orders page shows it."""
    return JobOrderView(
        code=order.code,
        product=order.product,
        quantity=order.quantity,
        state=order.state,
        due_at=_aware(order.due_at),
        created_at=_aware(order.created_at),
        started_at=_aware(order.started_at),
        ended_at=_aware(order.ended_at),
        operations=tuple(
            OperationView(
                sequence=op.sequence,
                name=op.name,
                equipment_class=op.equipment_class,
                state=op.state,
                work_unit=op.work_unit or op.planned_work_unit,
                good=op.good,
                scrap=op.scrap,
                started_at=_aware(op.started_at),
                ended_at=_aware(op.ended_at),
                operators=tuple(op.operators),
                consumed=tuple(
                    (str(c.get("lot", "?")), float(str(c.get("quantity", 0)))) for c in op.consumed
                ),
            )
            for op in order.operations
        ),
        output_lots=output_lots,
    )


def plant_view(
    equipment: list[EquipmentOut], running: list[JobOrderOut], now: datetime
) -> PlantView:
    """The Andon board from the equipment list and the running job orders.

    A work unit's job order and counts are those of the running operation on it (the
    latest started, should there be several). A work unit that is down is the Andon's
    stop call and carries its reason as the alarm text.
    """
    on_unit: dict[str, tuple[datetime, str, float, float]] = {}
    for order in running:
        for op in order.operations:
            if op.state != "running" or not op.work_unit:
                continue
            started = _aware(op.started_at) or now
            seen = on_unit.get(op.work_unit)
            if seen is None or started > seen[0]:
                on_unit[op.work_unit] = (started, order.code, op.good, op.scrap)
    lines = [e for e in equipment if e.level == "line"]
    units: dict[str | None, list[EquipmentOut]] = {}
    for e in equipment:
        if e.level == "work_unit":
            units.setdefault(e.parent, []).append(e)
    groups: list[LineTiles] = []
    orphans = [
        u for parent, us in units.items() if parent not in {ln.code for ln in lines} for u in us
    ]
    for line, members in [(ln.code, units.get(ln.code, [])) for ln in lines] + [("", orphans)]:
        if not members:
            continue
        name = next((ln.name for ln in lines if ln.code == line), "") or line or "Other work units"
        tiles = []
        for unit in members:
            job = on_unit.get(unit.code)
            down = unit.state == "down"
            tiles.append(
                WorkUnitTile(
                    code=unit.code,
                    name=unit.name,
                    line=line,
                    state=unit.state,
                    state_since=_aware(unit.state_since),
                    state_reason=unit.state_reason,
                    equipment_class=unit.equipment_class,
                    job_order=job[1] if job else None,
                    good=job[2] if job else 0.0,
                    scrap=job[3] if job else 0.0,
                    alarm=(unit.state_reason or "stopped") if down else None,
                    alarm_severity=DOWN_SEVERITY if down else 0,
                )
            )
        groups.append(LineTiles(code=line, name=name, tiles=tuple(tiles)))
    return PlantView(at=now, lines=tuple(groups))


class MesSource:
    """``DashboardSource`` over one logged-in ``MesClient``."""

    def __init__(self, client: mes.MesClient, url: str, clock: Callable[[], datetime]) -> None:
        self._client = client
        self._url = url
        self._clock = clock
        self._lock = threading.Lock()

    def _call(self, fn: Callable[[], T]) -> T:
        with translated(self._url):
            return fn()

    def plant(self) -> PlantView:
        equipment = self._call(self._client.list_equipment)
        running = self._call(
            lambda: self._client.list_job_orders(state="running", limit=LIST_LIMIT)
        )
        return plant_view(equipment, running, self._clock())

    def lines(self) -> list[tuple[str, str]]:
        lines = self._call(lambda: self._client.list_equipment(level="line"))
        return [(ln.code, ln.name) for ln in lines]

    def line(self, code: str, start: datetime, end: datetime) -> LineView:
        raise SourceError("the MES's KPI endpoints are not available yet")

    def job_orders(self) -> list[JobOrderView]:
        orders = self._call(lambda: self._client.list_job_orders(limit=LIST_LIMIT))
        return [job_order_view(o) for o in reversed(orders)]

    def job_order(self, code: str) -> JobOrderView:
        order = self._call(lambda: self._client.get_job_order(code))
        lots = self._call(lambda: self._client.list_lots())
        produced = tuple(
            lot.code for lot in lots if (lot.produced_by or "").split("/")[0] == order.code
        )
        return job_order_view(order, produced)

    def quality(self, characteristic: str | None) -> QualityView:
        raise SourceError("the MES's quality endpoints are not available yet")

    def lots(self) -> list[str]:
        return [lot.code for lot in reversed(self._call(lambda: self._client.list_lots()))]

    def genealogy(self, lot: str) -> GenealogyView:
        backward = self._call(lambda: self._client.genealogy(lot, direction="backward"))
        forward = self._call(lambda: self._client.genealogy(lot, direction="forward"))
        root = self._call(lambda: self._client.get_lot(lot))
        nodes: dict[str, LotNode] = {
            root.code: LotNode(root.code, root.material, root.status, root.quantity)
        }
        links: dict[tuple[str, str], LotLink] = {}
        for trace in (backward, forward):
            for node in trace.lots:
                nodes.setdefault(node.code, LotNode(node.code, node.material, node.status))
            for edge in trace.edges:
                links[(edge.parent, edge.child)] = LotLink(
                    parent=edge.parent,
                    child=edge.child,
                    job_order=edge.job_order,
                    operation=str(edge.operation),
                )
        return GenealogyView(root=lot, nodes=tuple(nodes.values()), links=tuple(links.values()))


class MesClientSession:
    """A browser session's MES connection: its client, who it is, and its source."""

    def __init__(
        self, client: mes.MesClient, url: str, user: str | None, roles: tuple[str, ...]
    ) -> None:
        self._client = client
        self._user = user
        self._roles = roles
        self._source = MesSource(client, url, lambda: datetime.now(UTC))

    @property
    def user(self) -> str | None:
        return self._user

    @property
    def roles(self) -> tuple[str, ...]:
        return self._roles

    @property
    def source(self) -> DashboardSource:
        return self._source

    @property
    def client(self) -> mes.MesClient:
        """The session's client, for pages that act (operator terminal pages)."""
        return self._client

    def close(self) -> None:
        self._client.close()


def mes_connector(url: str, *, timeout: float = TIMEOUT_S) -> Connector:
    """Opens sessions against the MES at ``url``: logs in when given credentials."""

    def connect(credentials: Credentials | None) -> MesSession:
        client = mes.MesClient(url, timeout=timeout)
        try:
            with translated(url):
                if credentials is None:
                    return MesClientSession(client, url, None, ())
                client.login(credentials.username, credentials.password)
                me = client.whoami()
            return MesClientSession(client, url, me.name, tuple(me.roles))
        except BaseException:
            client.close()
            raise

    return connect
