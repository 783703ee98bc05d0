"""The MES API through its typed client, on SQLite and PostgreSQL: the job order end to end
with genealogy both ways, every refusal (recorded in the audit trail), idempotent ingest,
roles, the event stream."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from mes_core_factories import Plant, plant

from mes_core.client import (
    MesAuthError,
    MesClient,
    MesForbidden,
    MesRuleViolation,
)
from mes_core.schemas.execution import JobOrderCreate, OutputLot
from mes_core.schemas.plant_events import CountEvent, StateChangeEvent


def assert_refusal_recorded(pl: Plant, rule: str, obj_part: str) -> None:
    entries = pl.admin.audit_entries(action="refused", limit=10_000)
    assert any(e.detail["rule"] == rule and obj_part in e.object for e in entries), (
        f"no refusal {rule} on {obj_part} in the audit trail"
    )


def refuse(pl: Plant, rule: str, obj_part: str, call: object) -> MesRuleViolation:
    assert callable(call)
    with pytest.raises(MesRuleViolation) as exc:
        call()
    assert exc.value.rule == rule
    assert exc.value.status == 409
    assert obj_part in (exc.value.object or "")
    assert_refusal_recorded(pl, rule, obj_part)
    return exc.value


def test_job_order_end_to_end_with_genealogy_both_directions(pl: Plant) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    booked = op.consume_lot(jo, 1, pl.c("B1"), 10)
    assert booked.consumption is not None
    assert (booked.consumption.lot, booked.consumption.quantity) == (pl.c("B1"), 10)
    assert booked.consumption.lot_remaining == 90
    # An operator transaction answers with the operation as it left it.
    progress = op.report_quantities(jo, 1, good=9, scrap=1)
    assert (progress.job_order, progress.job_order_state, progress.sequence) == (jo, "running", 1)
    assert (progress.state, progress.good, progress.scrap, progress.consumption) == (
        "running",
        9,
        1,
        None,
    )
    op.complete_operation(jo, 1)
    op.start_operation(jo, 2)
    op.consume_lot(jo, 2, pl.c("C1"), 9)
    op.report_quantities(jo, 2, good=9)
    done = op.complete_operation(jo, 2, output_lot=OutputLot(code=pl.c("OUT1")))
    assert done.state == "completed"
    assert [(o.state, o.good, o.scrap) for o in done.operations] == [
        ("completed", 9, 1),
        ("completed", 9, 0),
    ]
    # The job order's tree still lists what each operation consumed.
    assert [(c["lot"], c["quantity"]) for c in done.operations[0].consumed] == [(pl.c("B1"), 10)]
    assert pl.admin.get_lot(pl.c("B1")).quantity == 90

    # A second job order consumes the first one's output: genealogy two levels deep.
    pl.admin.create_routing(
        __import__("mes_core.schemas.masterdata", fromlist=["RoutingCreate"]).RoutingCreate(
            code=pl.c("R2"),
            product=pl.c("CAPS"),
            segments=[
                {  # type: ignore[list-item]
                    "sequence": 1,
                    "name": "pack",
                    "equipment_class": "Capper",
                    "materials": [{"material": pl.c("PROD")}],
                }
            ],
        )
    )
    jo2 = pl.c("JO2")
    pl.admin.create_job_order(JobOrderCreate(code=jo2, product=pl.c("CAPS"), quantity=9))
    pl.admin.release_job_order(jo2)
    pl.admin.dispatch_job_order(jo2, {1: pl.c("CAP")})
    op.start_operation(jo2, 1)
    op.consume_lot(jo2, 1, pl.c("OUT1"), 9)
    op.report_quantities(jo2, 1, good=9)
    op.complete_operation(jo2, 1, output_lot=OutputLot(code=pl.c("PACK1")))

    back = pl.admin.genealogy(pl.c("PACK1"), "backward")
    depth = {n.code: n.depth for n in back.lots}
    assert depth == {pl.c("PACK1"): 0, pl.c("OUT1"): 1, pl.c("B1"): 2, pl.c("C1"): 2}
    fwd = pl.admin.genealogy(pl.c("B1"), "forward")
    assert {n.code: n.depth for n in fwd.lots} == {pl.c("B1"): 0, pl.c("OUT1"): 1, pl.c("PACK1"): 2}
    assert pl.admin.genealogy(pl.c("B1"), "forward", max_depth=1).lots[-1].code == pl.c("OUT1")
    assert pl.admin.get_lot(pl.c("OUT1")).status == "consumed"

    pl.admin.close_job_order(jo)
    assert pl.admin.get_job_order(jo).state == "closed"
    assert pl.admin.verify_audit().ok


def test_refusal_sequence(pl: Plant) -> None:
    jo = pl.job_order()
    refuse(pl, "SEQUENCE", jo, lambda: pl.person("op").start_operation(jo, 2))


def test_partial_start_allowed_where_routing_says_so(mes_url: str, admin: MesClient) -> None:
    p = plant(mes_url, admin, allow_partial=True)
    op = p.person("op")
    jo = p.job_order()
    op.start_operation(jo, 1)
    refuse(p, "SEQUENCE", jo, lambda: op.start_operation(jo, 2))
    op.report_quantities(jo, 1, good=1)
    assert op.start_operation(jo, 2).operations[1].state == "running"
    refuse(p, "SEQUENCE", jo, lambda: op.complete_operation(jo, 2))
    p.close()


@pytest.mark.parametrize(
    ("lot", "quantity", "rule"),
    [
        ("C1", 1, "MATERIAL_NOT_ON_BOM"),
        ("BQ", 1, "LOT_NOT_AVAILABLE"),
        ("BX", 1, "LOT_EXPIRED"),
        ("B2", 6, "LOT_QUANTITY"),
    ],
)
def test_refusal_lot_consumption(pl: Plant, lot: str, quantity: float, rule: str) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    refuse(pl, rule, pl.c(lot), lambda: op.consume_lot(jo, 1, pl.c(lot), quantity))
    assert pl.admin.get_lot(pl.c(lot)).quantity in (100, 5)
    assert pl.admin.get_job_order(jo).operations[0].consumed == []


def test_refusal_held_lot_until_released(pl: Plant) -> None:
    op = pl.person("op")
    qa = pl.person("qa")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    qa.hold_lot(pl.c("B1"), "suspect supplier batch")
    refuse(pl, "HELD", pl.c("B1"), lambda: op.consume_lot(jo, 1, pl.c("B1"), 1))
    qa.release_lot(pl.c("B1"), "supplier CoA checked")
    booked = op.consume_lot(jo, 1, pl.c("B1"), 1).consumption
    assert booked is not None and booked.lot == pl.c("B1") and booked.quantity == 1


def test_refusal_held_job_order(pl: Plant) -> None:
    op = pl.person("op")
    qa = pl.person("qa")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    qa.hold_job_order(jo, "out of spec fill volume")
    refuse(pl, "HELD", jo, lambda: op.report_quantities(jo, 1, good=1))
    refuse(pl, "HELD", jo, lambda: op.consume_lot(jo, 1, pl.c("B1"), 1))
    refuse(pl, "HELD", jo, lambda: op.complete_operation(jo, 1))
    assert qa.release_job_order_hold(jo, "disposition: release").state == "running"
    op.complete_operation(jo, 1)


def test_refusal_certification(pl: Plant) -> None:
    jo = pl.job_order()
    refuse(
        pl, "CERTIFICATION", pl.c("expired"), lambda: pl.person("expired").start_operation(jo, 1)
    )
    refuse(pl, "CERTIFICATION", "person", lambda: pl.admin.start_operation(jo, 1, operators=[]))
    assert pl.admin.get_job_order(jo).operations[0].state == "pending"


@pytest.mark.parametrize(
    ("unit", "rule"),
    [
        ("CAP", "EQUIPMENT_CLASS"),
        ("FILL-UNQUAL", "EQUIPMENT_NOT_QUALIFIED"),
        ("FILL-UNCAL", "CALIBRATION_DUE"),
    ],
)
def test_refusal_equipment(pl: Plant, unit: str, rule: str) -> None:
    jo = pl.job_order()
    op = pl.person("op")
    refuse(pl, rule, pl.c(unit), lambda: op.start_operation(jo, 1, work_unit=pl.c(unit)))


def test_refusal_equipment_down_from_plant_state_event(pl: Plant) -> None:
    jo = pl.job_order()
    connector = MesClient(pl.url, api_key=pl.admin.create_api_key(pl.c("conn")).api_key)
    now = datetime.now(UTC)
    connector.ingest(
        [
            StateChangeEvent(
                source=pl.c("src"),
                sequence=1,
                work_unit=pl.c("FILL"),
                timestamp=now,
                state="down",
                reason="breakdown",
            )
        ]
    )
    assert pl.admin.get_equipment(pl.c("FILL")).state == "down"
    assert pl.admin.state_history(pl.c("FILL"))[0].reason == "breakdown"
    refuse(pl, "EQUIPMENT_DOWN", pl.c("FILL"), lambda: pl.person("op").start_operation(jo, 1))
    connector.close()


def test_first_reported_state_is_taken_even_when_the_plant_clock_is_behind(pl: Plant) -> None:
    # A simulated day (or a PLC clock) may lie before the work unit's creation in the MES:
    # the first report still sets the current state; later ones follow event time.
    connector = MesClient(pl.url, api_key=pl.admin.create_api_key(pl.c("conn")).api_key)
    past = datetime.now(UTC) - timedelta(days=300)
    assert pl.admin.get_equipment(pl.c("FILL")).state_since is None

    def state(seq: int, at: datetime, state: str) -> StateChangeEvent:
        return StateChangeEvent(
            source=pl.c("src"), sequence=seq, work_unit=pl.c("FILL"), timestamp=at, state=state
        )

    connector.ingest([state(1, past, "running")])
    unit = pl.admin.get_equipment(pl.c("FILL"))
    assert (unit.state, unit.state_since) == ("running", past)
    connector.ingest([state(3, past + timedelta(minutes=5), "starved")])
    connector.ingest([state(2, past + timedelta(minutes=1), "blocked")])  # late arrival
    assert pl.admin.get_equipment(pl.c("FILL")).state == "starved"
    connector.close()


def test_ingest_is_idempotent_on_source_and_sequence(pl: Plant) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    connector = MesClient(pl.url, api_key=pl.admin.create_api_key(pl.c("conn")).api_key)
    t0 = datetime.now(UTC)
    events = [
        CountEvent(
            source=pl.c("src"),
            sequence=i,
            work_unit=pl.c("FILL"),
            timestamp=t0 + timedelta(seconds=i),
            good=2,
            scrap=1 if i == 3 else 0,
        )
        for i in range(1, 6)
    ]
    first = connector.ingest(events)
    assert (first.accepted, first.duplicates) == (5, 0)
    replay = connector.ingest([*events[2:], events[0]])
    assert (replay.accepted, replay.duplicates) == (0, 4)
    more = connector.ingest([*events[:2], events[1].model_copy(update={"sequence": 6})])
    assert (more.accepted, more.duplicates) == (1, 2)
    ops = pl.admin.get_job_order(jo).operations
    assert (ops[0].good, ops[0].scrap) == (12, 1)
    unknown = connector.ingest(
        [events[0].model_copy(update={"sequence": 7, "work_unit": pl.c("NOPE")})]
    )
    assert unknown.unknown_work_units == [pl.c("NOPE")]
    connector.close()


def test_roles_are_enforced(pl: Plant, mes_url: str) -> None:
    with pytest.raises(MesAuthError):
        MesClient(mes_url).list_job_orders()
    with pytest.raises(MesAuthError):
        MesClient(mes_url, token="not-a-token").list_job_orders()
    with pytest.raises(MesAuthError):
        MesClient(mes_url).login(pl.c("op"), "wrong")
    op = pl.person("op")
    with pytest.raises(MesForbidden):
        op.create_job_order(JobOrderCreate(code=pl.c("X"), product=pl.c("PROD"), quantity=1))
    with pytest.raises(MesForbidden):
        op.ingest([])
    with pytest.raises(MesForbidden):
        op.audit_entries()
    assert op.whoami().roles == ["operator"]
    connector = MesClient(mes_url, api_key=pl.admin.create_api_key(pl.c("c")).api_key)
    with pytest.raises(MesForbidden):
        connector.start_operation(pl.c("X"), 1)
    assert connector.ingest([]).accepted == 0


def test_logins_and_failed_logins_are_audited(pl: Plant, mes_url: str) -> None:
    with pytest.raises(MesAuthError):
        MesClient(mes_url).login(pl.c("op"), "not-the-password")
    with pytest.raises(MesAuthError):
        MesClient(mes_url).login(pl.c("nobody"), "pw")
    MesClient(mes_url).login(pl.c("op"), "pw")
    failed = [
        e
        for e in pl.admin.audit_entries(action="refused", limit=10_000)
        if e.detail["rule"] == "NOT_AUTHENTICATED"
    ]
    assert {e.object for e in failed} >= {f"person:{pl.c('op')}", f"person:{pl.c('nobody')}"}
    assert all(e.actor == "anonymous" for e in failed)
    assert all("not-the-password" not in str(e.detail) for e in failed)
    logins = pl.admin.audit_entries(action="auth.login", object=f"person:{pl.c('op')}")
    assert logins and logins[-1].actor == pl.c("op")
    assert pl.admin.verify_audit().ok


def test_operator_transactions_check_credentials_in_the_endpoint(pl: Plant, mes_url: str) -> None:
    """Report and consume authenticate inside their own unit of work (one thread hop):
    still 401 for no or an unknown token, 403 audited for another role, nothing booked."""
    jo = pl.job_order()
    pl.person("op").start_operation(jo, 1)
    for client in (MesClient(mes_url), MesClient(mes_url, token="not-a-token")):
        with pytest.raises(MesAuthError):
            client.report_quantities(jo, 1, good=1)
        with pytest.raises(MesAuthError):
            client.consume_lot(jo, 1, pl.c("B1"), 1)
    qa = pl.person("qa")
    with pytest.raises(MesForbidden):
        qa.report_quantities(jo, 1, good=1)
    with pytest.raises(MesForbidden):
        qa.consume_lot(jo, 1, pl.c("B1"), 1)
    refused = [
        e.detail["attempted"]
        for e in pl.admin.audit_entries(action="refused", limit=10_000)
        if e.detail["rule"] == "FORBIDDEN" and e.object == f"actor:{pl.c('qa')}"
    ]
    assert f"POST /api/v1/job-orders/{jo}/operations/1/report" in refused
    assert f"POST /api/v1/job-orders/{jo}/operations/1/consume" in refused
    operation = pl.admin.get_job_order(jo).operations[0]
    assert (operation.good, operation.consumed) == (0, [])
    assert pl.admin.get_lot(pl.c("B1")).quantity == 100


def test_event_stream_resumes_from_last_event_id(pl: Plant) -> None:
    jo = pl.job_order(dispatch=False)
    entries = pl.admin.audit_entries(object=f"job_order:{jo}")
    created = entries[0].id
    pl.admin.release_job_order(jo)
    pl.admin.hold_job_order(jo, "stream test")
    events = list(pl.admin.stream_events(last_event_id=created, limit=2))
    assert [(e.action, e.object) for e in events] == [
        ("job_order.release", f"job_order:{jo}"),
        ("job_order.hold", f"job_order:{jo}"),
    ]
    assert created < events[0].id < events[1].id
    with httpx.Client(base_url=pl.url) as raw:
        r = raw.get("/api/v1/events/stream", params={"limit": 1})
        assert r.status_code == 401


def test_async_client_reads_the_same_job_order(pl: Plant) -> None:
    from mes_core.client import AsyncMesClient

    jo = pl.job_order()

    async def scenario() -> None:
        async with AsyncMesClient(pl.url, token=pl.admin.token) as client:
            got = await client.get_job_order(jo)
            assert got.state == "dispatched"
            with pytest.raises(MesRuleViolation) as exc:
                await client.start_operation(jo, 2)
            assert exc.value.rule == "SEQUENCE"
            first = [e async for e in client.stream_events(after=0, limit=1)]
            assert first[0].id == 1

    asyncio.run(scenario())


def test_abort_and_invalid_transitions_are_refused_and_recorded(pl: Plant) -> None:
    op = pl.person("op")
    jo = pl.job_order(dispatch=False)
    refuse(pl, "INVALID_TRANSITION", jo, lambda: pl.admin.dispatch_job_order(jo))
    refuse(pl, "INVALID_TRANSITION", jo, lambda: pl.admin.close_job_order(jo))
    pl.admin.release_job_order(jo)
    pl.admin.dispatch_job_order(jo)
    op.start_operation(jo, 1, work_unit=pl.c("FILL"))
    aborted = pl.admin.abort_job_order(jo, "customer cancelled")
    assert aborted.state == "aborted"
    assert [o.state for o in aborted.operations] == ["aborted", "aborted"]
    refuse(pl, "INVALID_TRANSITION", jo, lambda: op.report_quantities(jo, 1, good=1))
    refuse(pl, "INVALID_TRANSITION", jo, lambda: pl.admin.release_job_order(jo))


def test_an_ingest_batch_is_one_change_on_the_stream(pl: Plant) -> None:
    key = pl.admin.create_api_key(pl.c("conn")).api_key
    before = pl.admin.audit_entries(after_id=0, limit=10_000)[-1].id
    now = datetime.now(UTC)
    events = [
        StateChangeEvent(
            source=pl.c("s"),
            sequence=i,
            work_unit=pl.c("FILL" if i % 2 else "CAP"),
            timestamp=now + timedelta(seconds=i),
            state="running" if i % 3 else "idle",
        )
        for i in range(1, 101)
    ]
    with MesClient(pl.url, api_key=key) as connector:
        connector.ingest(events)
    changes = list(pl.admin.stream_events(after=before, limit=1))
    assert changes[0].action == "plant_events.ingested"
    assert changes[0].detail["accepted"] == 100
    # The last state per work unit: event 99 (FILL, idle) and event 100 (CAP, running).
    assert changes[0].detail["states"] == {pl.c("FILL"): "idle", pl.c("CAP"): "running"}
    assert pl.admin.audit_entries(after_id=changes[0].id) == []
    assert len(pl.admin.state_history(pl.c("FILL"), limit=1000)) == 50
