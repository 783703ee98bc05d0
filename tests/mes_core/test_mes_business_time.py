"""Which clock a record takes (mes_core.domain.clock), through the API on SQLite and
PostgreSQL: an operator action stated to have happened at a time (``occurred_at``) is
recorded at that business time only for an actor allowed to backdate; the rules are judged
at that time; the audit entry keeps the MES's own clock beside it. (~3 s per backend.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from mes_core_factories import Plant

from mes_core.client import MesClient, MesForbidden, MesRuleViolation, MesValidationError
from mes_core.domain.clock import business_time
from mes_core.domain.errors import Forbidden
from mes_core.schemas.masterdata import PersonCreate
from mes_core.schemas.plant_events import CountEvent, StateChangeEvent

NOW = datetime.now(UTC).replace(microsecond=0)
PLANT_T0 = NOW - timedelta(days=40)  # a plant running on a timeline of its own


def _backdater(pl: Plant, code: str, valid_until: datetime) -> MesClient:
    """An operator holding the ``backdate`` permission, certified for filling until
    ``valid_until``."""
    pl.admin.create_person(
        PersonCreate.model_validate(
            {
                "code": pl.c(code),
                "roles": ["operator", "backdate"],
                "password": "pw",
                "certifications": [
                    {"skill": "filling", "valid_until": valid_until.date().isoformat()}
                ],
            }
        )
    )
    return pl.person(code)


def test_business_time_is_the_mes_clock_unless_stated_by_a_role_allowed_to_backdate() -> None:
    t = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    ref = "job_order:X/operation:1"
    assert business_time(None, now=NOW, actor="op", roles={"operator"}, object_ref=ref) == NOW
    for roles in ({"operator", "backdate"}, {"integration"}):
        assert business_time(t, now=NOW, actor="x", roles=roles, object_ref=ref) == t
    with pytest.raises(Forbidden, match="may not state when an action happened"):
        business_time(t, now=NOW, actor="op", roles={"operator", "admin"}, object_ref=ref)


def test_operator_actions_are_recorded_at_the_stated_plant_time_and_audited_with_both(
    pl: Plant,
) -> None:
    op = _backdater(pl, "bd", NOW + timedelta(days=365))
    jo = pl.job_order()
    start, used, end = PLANT_T0, PLANT_T0 + timedelta(minutes=30), PLANT_T0 + timedelta(hours=13)
    op.start_operation(jo, 1, operators=[pl.c("bd")], occurred_at=start)
    op.consume_lot(jo, 1, pl.c("B1"), 4, occurred_at=used)
    op.report_quantities(jo, 1, good=3, occurred_at=used)
    op.complete_operation(jo, 1, occurred_at=end)
    first = pl.admin.get_job_order(jo)
    assert (first.started_at, first.operations[0].started_at) == (start, start)
    assert first.operations[0].ended_at == end
    assert first.operations[0].consumed[0]["at"] == used.isoformat()
    started = pl.admin.audit_entries(action="operation.started", object=f"job_order:{jo}", limit=10)
    assert started[-1].detail["occurred_at"] == start.isoformat()
    # The record time is the MES's own clock, never the stated one (21 CFR 11.10(e)).
    assert started[-1].at >= NOW - timedelta(minutes=5)


def test_a_stated_time_without_the_backdate_permission_is_refused_and_recorded(
    pl: Plant,
) -> None:
    jo = pl.job_order()
    with pytest.raises(MesForbidden) as exc:
        pl.person("op").start_operation(jo, 1, occurred_at=PLANT_T0)
    assert exc.value.rule == "FORBIDDEN"
    refusals = pl.admin.audit_entries(action="refused", object=f"job_order:{jo}", limit=100)
    assert any(e.detail["rule"] == "FORBIDDEN" for e in refusals)
    assert pl.admin.get_job_order(jo).operations[0].state == "pending"
    # Without a stated time the same person starts at the MES's clock.
    pl.person("op").start_operation(jo, 1)
    started = pl.admin.get_job_order(jo).operations[0].started_at
    assert started is not None and started >= NOW - timedelta(minutes=5)


def test_certification_and_lot_expiry_are_judged_at_the_business_time(pl: Plant) -> None:
    """A certification that lapsed before today still covers a start stated before its
    end, and not one after; a lot expired an hour ago was consumable two hours ago."""
    lapsed = NOW - timedelta(days=10)
    op = _backdater(pl, "bd", lapsed)
    early, late = pl.job_order("JO1"), pl.job_order("JO2")
    op.start_operation(early, 1, operators=[pl.c("bd")], occurred_at=lapsed - timedelta(days=1))
    with pytest.raises(MesRuleViolation) as exc:
        op.start_operation(late, 1, operators=[pl.c("bd")], occurred_at=lapsed + timedelta(days=1))
    assert exc.value.rule == "CERTIFICATION"
    op.consume_lot(early, 1, pl.c("BX"), 1, occurred_at=NOW - timedelta(hours=2))
    with pytest.raises(MesRuleViolation) as exc:
        op.consume_lot(early, 1, pl.c("BX"), 1, occurred_at=NOW - timedelta(minutes=30))
    assert exc.value.rule == "LOT_EXPIRED"


def test_an_operation_cannot_end_before_it_started(pl: Plant) -> None:
    op = _backdater(pl, "bd", NOW + timedelta(days=365))
    jo = pl.job_order()
    op.start_operation(jo, 1, operators=[pl.c("bd")], occurred_at=PLANT_T0)
    with pytest.raises(MesValidationError, match="is before"):
        op.complete_operation(jo, 1, occurred_at=PLANT_T0 - timedelta(seconds=1))
    assert pl.admin.get_job_order(jo).operations[0].state == "running"


def test_the_plant_clock_is_the_latest_plant_event_time_the_mes_holds(pl: Plant) -> None:
    """``GET /api/v1/plant-events/clock``: the latest timestamp of any plant event (what
    the dashboards call "now" for a simulated plant); a late arrival never moves it back.
    (Dated ahead of every other test's events on the shared database, within the default
    plant-time window: 30 days past the MES clock.)"""
    connector = MesClient(pl.url, api_key=pl.admin.create_api_key(pl.c("conn")).api_key)
    ahead = NOW + timedelta(days=20)
    connector.ingest(
        [
            StateChangeEvent(
                source=pl.c("src"), sequence=1, work_unit=pl.c("FILL"), timestamp=ahead,
                state="running",
            ),
            CountEvent(
                source=pl.c("src"), sequence=2, work_unit=pl.c("CAP"),
                timestamp=ahead + timedelta(minutes=7), good=3,
            ),
        ]
    )  # fmt: skip
    clock = pl.admin.plant_clock()
    assert clock.plant_time == ahead + timedelta(minutes=7)
    assert abs((clock.mes_time - datetime.now(UTC)).total_seconds()) < 300
    connector.ingest(
        [
            StateChangeEvent(
                source=pl.c("src"), sequence=3, work_unit=pl.c("FILL"), timestamp=ahead,
                state="idle",
            )
        ]
    )  # fmt: skip
    assert pl.admin.plant_clock().plant_time == ahead + timedelta(minutes=7)
    connector.close()
