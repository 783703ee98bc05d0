"""A database that goes away is answered 503 with Retry-After, quickly, and the MES comes
back by itself (issue 21, items 7 and 8): PostgreSQL reached through a TCP proxy that the
test cuts (connections refused) or blackholes (accepted, never answered) and restores."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from mes_core_factories import ADMIN_PASSWORD
from sqlalchemy.engine import make_url
from support import postgres_url, require, throwaway_postgres

from mes_core.demo import ServerThread
from mes_core.persistence.migrate import upgrade
from mes_core.settings import Settings
from twin.scenario.proxy import TcpProxy

#: Every call below must be answered within this (a hang fails the test, not a timing).
ANSWER_WITHIN_S = 10.0


@pytest.fixture(scope="module")
def proxied_mes() -> Iterator[tuple[str, TcpProxy]]:
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_outage") as url:
        upgrade(url)
        target = make_url(url)
        proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
        try:
            via = target.set(host="127.0.0.1", port=proxy.port)
            settings = Settings(
                database_url=via.render_as_string(hide_password=False),
                admin_password=ADMIN_PASSWORD,
                db_answer_within_s=1,  # default 2 s: shorter, to keep the test short
            )
            with ServerThread(settings) as server:
                yield server.url, proxy
        finally:
            proxy.stop()


def _token(http: httpx.Client) -> str:
    answer = http.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _batch(first: int, n: int) -> dict[str, object]:
    now = datetime.now(UTC).isoformat()
    return {
        "events": [
            {
                "source": "outage-test",
                "sequence": i,
                "kind": "measurement",
                "work_unit": "NOWHERE",
                "timestamp": now,
                "characteristic": "t",
                "value": 1.0,
            }
            for i in range(first + 1, first + n + 1)
        ]
    }


def _unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, (answer.status_code, answer.text)
    assert answer.headers.get("retry-after") == "1"
    assert answer.json()["rule"] == "DATABASE_UNAVAILABLE"


@pytest.mark.postgres
def test_database_cut_mid_ingest_is_503_with_retry_after_and_recovers(
    proxied_mes: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied_mes
    with httpx.Client(base_url=url, timeout=ANSWER_WITHIN_S) as http:
        headers = {"Authorization": f"Bearer {_token(http)}"}
        assert http.get("/health").json() == {"status": "ok"}
        statuses: list[int] = []
        stop = threading.Event()

        def ingest() -> None:
            # A client posting batches in a loop while the database goes away and back.
            n = 0
            with httpx.Client(base_url=url, timeout=ANSWER_WITHIN_S, headers=headers) as c:
                while not stop.is_set():
                    statuses.append(
                        c.post("/api/v1/plant-events/batch", json=_batch(n, 50)).status_code
                    )
                    n += 50

        loop = threading.Thread(target=ingest)
        loop.start()
        try:
            time.sleep(0.5)
            proxy.cut()
            time.sleep(1.0)
            _unavailable(http.get("/api/v1/equipment", headers=headers))
            _unavailable(
                http.post(
                    "/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD}
                )
            )
            _unavailable(http.get("/health"))
            _unavailable(http.get("/health/ready"))
            assert http.get("/health/live").json() == {"status": "ok"}
            proxy.restore()
            deadline = time.monotonic() + 20
            while http.get("/health").status_code != 200:
                assert time.monotonic() < deadline, "the MES did not recover by itself"
                time.sleep(0.2)
            assert http.get("/api/v1/equipment", headers=headers).status_code == 200
            time.sleep(0.5)
        finally:
            stop.set()
            loop.join(ANSWER_WITHIN_S * 2)
    assert 503 in statuses and statuses[-1] != 503, statuses
    assert 500 not in statuses, statuses


@pytest.mark.postgres
def test_database_blackholed_is_503_within_seconds_and_recovers(
    proxied_mes: tuple[str, TcpProxy],
) -> None:
    # A server (or a path) that accepts and never answers: the pooled connections go
    # silent mid-conversation and new ones never finish their handshake. Neither
    # PostgreSQL's statement_timeout (the server never sees the statement) nor TCP (the
    # bytes are acknowledged) ends the wait: the MES must.
    url, proxy = proxied_mes
    with httpx.Client(base_url=url, timeout=ANSWER_WITHIN_S) as http:
        headers = {"Authorization": f"Bearer {_token(http)}"}
        assert http.post("/api/v1/plant-events/batch", json=_batch(0, 5), headers=headers)
        calls: list[Callable[[], httpx.Response]] = [
            lambda: http.get("/api/v1/equipment", headers=headers),
            lambda: http.get("/api/v1/job-orders", headers=headers),
            lambda: http.post("/api/v1/plant-events/batch", json=_batch(5, 5), headers=headers),
            lambda: http.post(
                "/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD}
            ),
            lambda: http.get("/health"),
        ]
        proxy.blackhole()
        try:
            with ThreadPoolExecutor(len(calls)) as pool:
                answers = list(pool.map(lambda call: call(), calls))
            for answer in answers:
                _unavailable(answer)
            assert http.get("/health/live").json() == {"status": "ok"}
        finally:
            proxy.restore()
        deadline = time.monotonic() + 20
        while http.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "the MES did not recover by itself"
            time.sleep(0.2)
        assert http.get("/api/v1/equipment", headers=headers).status_code == 200
        answer = http.post("/api/v1/plant-events/batch", json=_batch(5, 5), headers=headers)
        assert answer.status_code == 200, answer.text
