"""Concurrency of ingest and start-up (issues 2 and 8): overlapping batches posted at once
touch the same equipment and operations in opposite orders, yet never deadlock into an
error and count exactly; API workers starting together create one admin, without errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
from mes_core_factories import ADMIN_PASSWORD, Plant
from sqlalchemy import func, select
from support import postgres_url, require, throwaway_postgres

from mes_core.api.app import ensure_admin
from mes_core.persistence import audit
from mes_core.persistence.db import make_engine, make_session_factory
from mes_core.persistence.migrate import upgrade
from mes_core.persistence.models import AuditEntry, Person
from mes_core.schemas.plant_events import (
    CountEvent,
    EquipmentState,
    PlantEvent,
    PlantEventBatch,
    StateChangeEvent,
)
from mes_core.settings import Settings

ROUNDS = 6
UNITS = ("FILL", "CAP", "FILL-UNCAL", "FILL-UNQUAL")


def _round(pl: Plant, first_seq: int, t0: datetime) -> list[PlantEvent]:
    """One round's events, sequences from ``first_seq``: every unit changes state (in
    ``UNITS`` order), FILL counts 40 units, every unit changes state again (in reverse
    order), FILL counts 40 more."""
    events: list[PlantEvent] = []
    seq = first_seq

    def at() -> datetime:
        return t0 + timedelta(milliseconds=seq)

    for units, state in ((UNITS, EquipmentState.RUNNING), (UNITS[::-1], EquipmentState.IDLE)):
        for unit in units:
            events.append(
                StateChangeEvent(
                    source=pl.c("src"),
                    sequence=seq,
                    work_unit=pl.c(unit),
                    timestamp=at(),
                    state=state,
                )
            )
            seq += 1
        for _ in range(40):
            events.append(
                CountEvent(
                    source=pl.c("src"),
                    sequence=seq,
                    work_unit=pl.c("FILL"),
                    timestamp=at(),
                    good=1,
                    scrap=0,
                )
            )
            seq += 1
    return events


def test_overlapping_batches_posted_concurrently_never_fail_and_count_exactly(
    pl: Plant,
) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    key = pl.admin.create_api_key(pl.c("conn")).api_key
    t0 = datetime.now(UTC)
    size = 2 * (len(UNITS) + 40)
    batches: list[list[PlantEvent]] = []
    for r in range(ROUNDS):
        events = _round(pl, 1 + r * size, t0)
        # Two batches posted at once, overlapping by half: the first holds the units'
        # changes in forward order last, the second in reverse order.
        batches.append(events[: size * 3 // 4])
        batches.append(events[size // 4 :])
    unique: dict[tuple[str, int], PlantEvent] = {}
    for b in batches:
        for ev in b:
            unique.setdefault((ev.source, ev.sequence), ev)
    expected_good = sum(ev.good for ev in unique.values() if isinstance(ev, CountEvent))

    def post(events: list[PlantEvent]) -> tuple[int, int]:
        body = PlantEventBatch(events=events).model_dump(mode="json")
        with httpx.Client(base_url=pl.url, headers={"X-API-Key": key}, timeout=60) as client:
            response = client.post("/api/v1/plant-events/batch", json=body)
        return response.status_code, int(response.json().get("accepted", 0))

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(post, batches))
    statuses = [status for status, _ in outcomes]
    assert statuses == [200] * len(batches), statuses
    assert sum(accepted for _, accepted in outcomes) == len(unique)
    assert pl.admin.get_job_order(jo).operations[0].good == expected_good
    assert pl.admin.verify_audit().ok


def test_api_workers_starting_together_create_one_admin_without_errors() -> None:
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_startup_race") as url:
        upgrade(url)
        settings = Settings(database_url=url, admin_password=ADMIN_PASSWORD)
        engine = make_engine(url)
        try:
            factory = make_session_factory(engine)
            # Four "workers" at once on an empty database (each its own check and insert).
            with ThreadPoolExecutor(max_workers=4) as pool:
                results = [pool.submit(ensure_admin, factory, settings) for _ in range(4)]
                for result in results:
                    result.result()  # re-raises a worker's error, if any
            with factory() as session:
                admins = session.scalar(
                    select(func.count()).select_from(Person).where(Person.code == "admin")
                )
                created = session.scalar(
                    select(func.count())
                    .select_from(AuditEntry)
                    .where(AuditEntry.action == "person.created")
                )
                assert (admins, created) == (1, 1)
                assert audit.verify(session).ok
        finally:
            engine.dispose()
