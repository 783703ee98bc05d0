"""Crash consistency on PostgreSQL (issue 21, item 7), against a real ``mestwin serve``
with 2 workers:

- SIGKILL during ingest, twice, while a collector posts batches in a loop and replays
  every batch it has no answer for: the stored events are exactly the unique events sent
  (0 lost, 0 doubled).
- Two clients drawing on one lot beyond its quantity at once: exactly one wins.

The third part of item 7 (the database cut through a TCP proxy mid-ingest) is
``test_security_database_outage.py``. Bounded: 3,000 events, two kills.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from mes_core_factories import ADMIN_PASSWORD, plant
from sqlalchemy import create_engine, text
from support import postgres_url, require, throwaway_postgres

from mes_core.client import MesClient
from mes_core.client.errors import MesRuleViolation
from mes_core.client.local import LocalMes
from mes_core.persistence.migrate import upgrade

BATCHES, PER_BATCH = 20, 150
SOURCE = "crash-test"

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def mes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalMes, str]]:
    """One ``mestwin serve --workers 2`` for the module (the lot race runs first; the
    ingest test kills and restarts it)."""
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_crash") as url:
        upgrade(url)  # in this process: a `mestwin db upgrade` child costs a start-up
        log = tmp_path_factory.mktemp("crash") / "mes.log"
        server = LocalMes(url, log, ADMIN_PASSWORD, workers=2)
        server.start()
        try:
            server.wait_ready()
            yield server, url
        finally:
            server.stop()


def _batch(index: int) -> dict[str, object]:
    at = datetime.now(UTC).isoformat()
    first = index * PER_BATCH + 1
    return {
        "events": [
            {
                "source": SOURCE,
                "sequence": sequence,
                "kind": "count",
                "work_unit": "CRASH-WU",
                "timestamp": at,
                "good": 1,
            }
            for sequence in range(first, first + PER_BATCH)
        ]
    }


def test_two_clients_drawing_beyond_a_lot_at_once_one_wins(mes: tuple[LocalMes, str]) -> None:
    server, _ = mes
    with MesClient(server.url).login("admin", ADMIN_PASSWORD) as admin:
        pl = plant(server.url, admin)
        try:
            op = pl.person("op")
            jobs = [pl.job_order("JA"), pl.job_order("JB")]
            for jo in jobs:
                op.start_operation(jo, 1)
                op.consume_lot(jo, 1, pl.c("B1"), 1)
                op.consume_lot(jo, 1, pl.c("B2"), 1)
            # B1: 98 left, two draws of 60; B2: 3 left, two draws of 2. Each round, two
            # clients (the two workers share them out) draw at the same instant.
            for lot, draw, left in ((pl.c("B1"), 60, 38), (pl.c("B2"), 2, 1)):
                start = threading.Barrier(2)
                outcomes: list[str] = []

                def draw_from(
                    jo: str,
                    lot: str = lot,
                    draw: float = draw,
                    start: threading.Barrier = start,
                    outcomes: list[str] = outcomes,
                ) -> None:
                    with MesClient(server.url, token=op.token) as client:
                        start.wait()
                        try:
                            client.consume_lot(jo, 1, lot, draw)
                            outcomes.append("won")
                        except MesRuleViolation as exc:
                            outcomes.append(exc.rule)

                racers = [threading.Thread(target=draw_from, args=(jo,)) for jo in jobs]
                for racer in racers:
                    racer.start()
                for racer in racers:
                    racer.join(60)
                assert sorted(outcomes)[-1] == "won" and outcomes.count("won") == 1, outcomes
                assert admin.get_lot(lot).quantity == left
            assert admin.verify_audit().ok
        finally:
            pl.close()


def test_sigkill_during_ingest_then_replay_loses_and_doubles_nothing(
    mes: tuple[LocalMes, str],
) -> None:
    server, url = mes
    with MesClient(server.url).login("admin", ADMIN_PASSWORD) as admin:
        key = admin.create_api_key("crash-collector").api_key
    acked: list[int] = []
    accepted = 0
    failures: list[str] = []

    def collector() -> None:
        # A collector's loop: send the oldest unacknowledged batch until it is answered.
        nonlocal accepted
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=20) as http:
            for index in range(BATCHES):
                for _ in range(600):
                    try:
                        answer = http.post("/api/v1/plant-events/batch", json=_batch(index))
                    except httpx.TransportError:
                        time.sleep(0.05)  # killed mid-request, or not back yet: replay
                        continue
                    if answer.status_code == 503:
                        time.sleep(0.05)
                        continue
                    if answer.status_code != 200:
                        failures.append(f"batch {index}: {answer.status_code} {answer.text}")
                        return
                    accepted += answer.json()["accepted"]
                    acked.append(index)
                    break
                else:
                    failures.append(f"batch {index} never acknowledged")
                    return

    loop = threading.Thread(target=collector)
    loop.start()
    try:
        for kill_after in (4, 11):
            deadline = time.monotonic() + 120
            while len(acked) < kill_after:
                assert time.monotonic() < deadline and not failures, failures
                time.sleep(0.005)
            server.kill()  # the collector is mid-request: it posts back to back
            server.start()
            server.wait_ready()
        loop.join(300)
    finally:
        if loop.is_alive():
            server.kill()
        loop.join(30)
    assert not failures, failures
    assert acked == list(range(BATCHES))
    assert server.starts == 3  # started once, restarted after each kill
    # Everything once more, as a collector replaying its whole spool: all duplicates.
    with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=20) as http:
        again = http.post("/api/v1/plant-events/batch", json=_batch(7)).json()
        assert (again["accepted"], again["duplicates"]) == (0, PER_BATCH)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored, distinct, lowest, highest = conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT sequence), min(sequence), max(sequence) "
                    "FROM plant_event WHERE source = :source"
                ),
                {"source": SOURCE},
            ).one()
    finally:
        engine.dispose()
    sent = BATCHES * PER_BATCH
    assert (stored, distinct, lowest, highest) == (sent, sent, 1, sent)  # 0 lost, 0 doubled
    # A batch committed just before a kill came back as duplicates when replayed.
    assert accepted <= sent
