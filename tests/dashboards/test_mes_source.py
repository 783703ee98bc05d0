"""The adapter from the MES's API answers to the pages' views (pure: no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dashboards.mes_source import (
    holds_view,
    oee_view,
    plant_view,
    throughput_points,
    translated,
)
from dashboards.source import MesAuthError, MesUnavailable, NotFound, SourceError
from mes_core import client as mes
from mes_core.kpi.schemas import KpiReport, TimeElementsOut
from mes_core.quality.schemas import NonconformanceOut
from mes_core.schemas.execution import JobOrderOut
from mes_core.schemas.masterdata import EquipmentOut, LotOut

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def unit(code: str, parent: str, state: str = "running", reason: str = "") -> EquipmentOut:
    return EquipmentOut(
        code=code,
        name=code.title(),
        level="work_unit",
        parent=parent,
        equipment_class="Machine",
        state=state,
        state_reason=reason,
        state_since=T0,
        qualified=True,
        qualification_due=None,
        calibration_due=None,
    )


def line(code: str) -> EquipmentOut:
    return EquipmentOut(
        code=code, name=f"Line {code}", level="line", parent="AREA", equipment_class=None,
        state="idle", state_reason="", state_since=T0, qualified=True,
        qualification_due=None, calibration_due=None,
    )  # fmt: skip


def order(code: str, state: str, ops: list[dict[str, Any]]) -> JobOrderOut:
    return JobOrderOut.model_validate(
        {
            "code": code, "product": "P", "routing": "R", "quantity": 100, "due_at": None,
            "state": state, "created_at": T0, "started_at": T0, "ended_at": None,
            "operations": [
                {
                    "sequence": i + 1, "name": f"op{i + 1}", "equipment_class": "Machine",
                    "planned_work_unit": None, "ended_at": None, "operators": [],
                    "consumed": [], **op,
                }
                for i, op in enumerate(ops)
            ],
        }
    )  # fmt: skip


def test_andon_shows_the_running_or_held_job_on_each_unit_and_a_stop_as_an_alarm() -> None:
    equipment = [
        line("L1"),
        unit("L1-A", "L1"),
        unit("L1-B", "L1", state="down", reason="jam"),
        unit("LOOSE", "NOWHERE"),
    ]
    on_a = {"state": "running", "work_unit": "L1-A", "good": 5, "scrap": 1, "started_at": T0}
    on_b = {"state": "running", "work_unit": "L1-B", "good": 2, "scrap": 0, "started_at": T0}
    orders = [order("JO-1", "running", [on_a]), order("JO-2", "held", [on_b])]
    view = plant_view(equipment, orders, T0 + timedelta(minutes=1))
    assert [ln.code for ln in view.lines] == ["L1", ""]
    a, b = view.lines[0].tiles
    assert (a.job_order, a.good, a.scrap, a.alarm) == ("JO-1", 5, 1, None)
    assert b.job_order == "JO-2" and b.job_order_held and b.alarm == "jam"
    assert view.lines[1].tiles[0].code == "LOOSE", "work units outside a line still show"


def kpi(good: float, pbt: float, planned_run_time: float, produced: float) -> KpiReport:
    return KpiReport(
        equipment="L1", level="line", start=T0, end=T0 + timedelta(hours=1), calendar="24/7",
        quantity_source="plant",
        time=TimeElementsOut(pot=pbt, pdot=0, pbt=pbt, apt=pbt, aust=0, adet=0, adot=0, aubt=pbt),
        produced_quantity=produced, good_quantity=good, scrap_quantity=produced - good,
        rework_quantity=0, planned_run_time=planned_run_time, quantity_without_pru=0,
        availability=None, effectiveness=None, quality_ratio=None, oee=None,
        throughput_per_hour=None, scrap_ratio=None, first_pass_yield=None,
    )  # fmt: skip


def test_throughput_plan_is_the_standard_rate_over_planned_busy_time() -> None:
    """Plan = PBT / PRU (ISO 22400-2 planned busy time at the routing's standard rate)."""
    window = kpi(good=5000, pbt=7200, planned_run_time=3000, produced=6000)  # PRU 0.5 s
    buckets = [kpi(good=2000, pbt=3600, planned_run_time=1000, produced=2000), None]
    now = T0 + timedelta(hours=2)
    points = throughput_points(T0, buckets, window, now)
    assert [(p.actual, p.plan) for p in points] == [(0, 0), (2000, 7200), (5000, 14400)]
    assert points[-1].at == now
    no_routing = throughput_points(T0, [], kpi(10, 3600, 0, 10), now)
    assert all(p.plan is None for p in no_routing)


def test_holds_name_the_open_nonconformance_that_holds_them() -> None:
    nc = NonconformanceOut(
        number="NC-1", state="open", source="spc", description="case_weight above USL",
        characteristic_id=1, job_order="JO-1", opened_at=T0, opened_by="qa",
        held_lots=["LOT-1"], held_job_orders=["JO-1"], disposition=None, quantity=None,
        disposed_at=None, signature=None,
    )  # fmt: skip
    lot = LotOut(
        code="LOT-1", material="M", status="on_hold", quantity=1, initial_quantity=1,
        expires_at=None, created_at=T0,
    )  # fmt: skip
    other = LotOut(
        code="LOT-2", material="M", status="on_hold", quantity=1, initial_quantity=1,
        expires_at=None, created_at=T0,
    )  # fmt: skip
    holds = holds_view([lot, other], [order("JO-1", "held", [])], [nc])
    assert [(h.kind, h.code, h.reason) for h in holds] == [
        ("lot", "LOT-1", "NC-1: case_weight above USL"),
        ("lot", "LOT-2", "on hold"),
        ("job_order", "JO-1", "NC-1: case_weight above USL"),
    ]


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectError("refused"), MesUnavailable),
        (httpx.ReadTimeout("slow"), MesUnavailable),
        (mes.MesClientError(503, "HTTP_ERROR", "down"), MesUnavailable),
        (mes.MesAuthError(401, "AUTH", "expired"), MesAuthError),
        (mes.MesForbidden(403, "FORBIDDEN", "role"), MesAuthError),
        (mes.MesNotFound(404, "NOT_FOUND", "no lot X"), NotFound),
        (mes.MesValidationError(422, "VALIDATION", "bad window"), SourceError),
    ],
)
def test_client_errors_become_what_the_page_says(raised: Exception, expected: type) -> None:
    with pytest.raises(expected), translated("http://mes"):
        raise raised


def test_line_page_flags_an_effectiveness_above_100_percent_as_a_master_data_error() -> None:
    """ISO 22400-2:2014 clause 6: effectiveness = PRU x PQ / APT is at most 1; the MES
    says when it is not, and the Line page shows it above the KPI cards."""
    from dashboards.pages.line import kpi_cards
    from dashboards.views import LineView

    error = "master-data error: effectiveness 116.3% is above 100 %: the routing's PRU ..."
    report = kpi(good=5000, pbt=3600, planned_run_time=4187, produced=5000).model_copy(
        update={"effectiveness": 1.163, "master_data_errors": [error]}
    )
    view = LineView(code="L1", name="", oee=oee_view(report), states=(), work_units=())
    assert view.oee.master_data_errors == (error,)
    cards = kpi_cards(view)
    assert cards[0].id == "line-master-data"
    assert error in str(cards[0].children)
    plausible = LineView(code="L1", name="", oee=oee_view(kpi(5000, 3600, 3000, 5000)), states=(),
                         work_units=())  # fmt: skip
    assert all(getattr(c, "id", "") != "line-master-data" for c in kpi_cards(plausible))


def test_now_on_the_pages_is_the_plant_clock_the_mes_knows_not_the_wall_clock() -> None:
    """Issue 13: a simulated plant months behind the wall clock shows its tiles' "for"
    and its orders' due dates on its own timeline."""
    from dashboards.mes_source import MesSource
    from mes_core.schemas.plant_events import PlantClockOut

    plant_time = T0 + timedelta(hours=3)

    class Client:
        def list_equipment(self, level: str | None = None) -> list[EquipmentOut]:
            return [line("L1"), unit("L1-A", "L1")]

        def list_job_orders(self, **_: Any) -> list[JobOrderOut]:
            return []

        def plant_clock(self) -> PlantClockOut:
            return PlantClockOut(plant_time=plant_time, mes_time=datetime.now(UTC))

    wall = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
    source = MesSource(Client(), "http://mes", lambda: wall)  # type: ignore[arg-type]
    assert source.plant().at == plant_time
    assert source.now() == plant_time
