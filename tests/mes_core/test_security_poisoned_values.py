"""Values that would poison the record are refused whole, naming where (issue 21, item 9):
non-finite measurements, timestamps outside the plant-time window, NUL characters."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from mes_core_factories import ADMIN_PASSWORD, Plant

from mes_core.api.plant_time import PlantTimeWindow
from mes_core.demo import ServerThread
from mes_core.persistence.migrate import upgrade
from mes_core.settings import Settings

PLANT_MODELS = Path(__file__).resolve().parents[2] / "plant_models"


def _http(pl: Plant) -> httpx.Client:
    return httpx.Client(
        base_url=pl.url, timeout=30, headers={"Authorization": f"Bearer {pl.admin.token}"}
    )


def _events(pl: Plant, source: str, n: int = 3) -> list[dict[str, object]]:
    at = datetime(2026, 1, 5, 6, tzinfo=UTC).isoformat()
    return [
        {
            "source": source,
            "sequence": i,
            "kind": "measurement",
            "work_unit": pl.c("FILL"),
            "timestamp": at,
            "characteristic": "fill_volume",
            "value": 500.0,
        }
        for i in range(1, n + 1)
    ]


def _post_raw(http: httpx.Client, text: str) -> httpx.Response:
    return http.post(
        "/api/v1/plant-events/batch", content=text, headers={"Content-Type": "application/json"}
    )


def _nothing_was_written(http: httpx.Client, events: list[dict[str, object]]) -> None:
    # The good events of a refused batch go in afterwards as new: none was stored before.
    answer = http.post("/api/v1/plant-events/batch", json={"events": events})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(events)
    assert answer.json()["duplicates"] == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_measurement_refuses_the_batch_naming_the_event(pl: Plant, literal: str) -> None:
    events = _events(pl, f"{pl.p}-nonfinite-{literal}")
    text = json.dumps({"events": events}).replace('"value": 500.0}]', f'"value": {literal}}}]')
    assert literal in text
    with _http(pl) as http:
        answer = _post_raw(http, text)
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body["rule"] == "VALIDATION"
        assert "body.events.2.measurement.value" in body["message"]
        _nothing_was_written(http, events)


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"])
def test_timestamp_outside_the_plant_time_window_refuses_the_batch(pl: Plant, stamp: str) -> None:
    events = _events(pl, f"{pl.p}-stamp-{stamp[:4]}")
    bad = [*events[:1], {**events[1], "timestamp": stamp}, *events[2:]]
    with _http(pl) as http:
        answer = http.post("/api/v1/plant-events/batch", json={"events": bad})
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"] == [
            {
                "loc": "body.events.1.timestamp",
                "msg": answer.json()["detail"][0]["msg"],
                "type": "plant_time_window",
            }
        ]
        assert "outside the plant-time window" in answer.json()["message"]
        _nothing_was_written(http, events)


def test_plant_time_window_holds_every_shipped_plant() -> None:
    # Plant time is the plant's calendar, not the wall clock: every shipped plant model
    # starts inside the default window around the MES clock (the plant clock of a fresh
    # MES), and years of its simulated time fit beyond it.
    settings = Settings()
    now = datetime.now(UTC)
    starts = []
    for path in sorted(PLANT_MODELS.glob("*.yaml")):
        # The plant's `start:` line (the first one, under `plant:`), without parsing the
        # whole file (the reference plant is large for PyYAML's pure-Python loader).
        found = re.search(r"^  start: (\S+)$", path.read_text(), re.MULTILINE)
        assert found is not None, path
        start = datetime.fromisoformat(found.group(1))
        starts.append(start)
        assert now - settings.plant_time_max_behind <= start <= now + settings.plant_time_max_ahead
    assert starts
    assert settings.plant_time_max_ahead >= timedelta(days=7)


def _stamped(source: str, *stamps: datetime) -> list[dict[str, object]]:
    return [
        {
            "source": source,
            "sequence": i,
            "kind": "measurement",
            "work_unit": "WU",
            "timestamp": at.isoformat(),
            "characteristic": "t",
            "value": 1.0,
        }
        for i, at in enumerate(stamps, start=1)
    ]


def test_the_window_follows_the_plant_clock_on_every_worker(tmp_path: Path) -> None:
    # MAX_AHEAD 1 h: each event may be up to 1 h past the later of the plant clock and
    # the MES clock. A second worker is a window that has not read the plant clock yet.
    url = f"sqlite:///{tmp_path / 'mes.db'}"
    upgrade(url)
    settings = Settings(
        database_url=url,
        admin_password=ADMIN_PASSWORD,
        plant_time_max_ahead=timedelta(hours=1),
        plant_time_max_behind=timedelta(days=1),
    )
    now = datetime.now(UTC)
    with (
        ServerThread(settings) as one,
        httpx.Client(base_url=one.url, timeout=30) as first,
    ):
        second = first
        login = {"username": "admin", "password": ADMIN_PASSWORD}
        token = first.post("/api/v1/auth/token", json=login).json()["access_token"]
        first.headers["Authorization"] = f"Bearer {token}"
        equipment = [
            {"code": "L", "level": "line"},
            {"code": "WU", "level": "work_unit", "parent": "L", "equipment_class": "C"},
        ]
        loaded = first.post("/api/v1/master-data", json={"equipment": equipment})
        assert loaded.status_code in (200, 201), loaded.text

        def post(http: httpx.Client, events: list[dict[str, object]]) -> httpx.Response:
            return http.post("/api/v1/plant-events/batch", json={"events": events})

        step = timedelta(minutes=50)
        assert post(first, _stamped("w-1", now + step)).status_code == 200
        # 100 min past the MES clock, 50 past the plant clock: in (the window follows the
        # plant); a second worker reads the plant clock that the first one moved.
        app = one.server.config.app
        app.state.plant_time_window = PlantTimeWindow(
            ahead=settings.plant_time_max_ahead, behind=settings.plant_time_max_behind
        )
        assert post(second, _stamped("w-2", now + 2 * step)).status_code == 200
        # One event 2 h past the plant clock, one 2 days before the MES clock: the batch
        # is refused whole, naming both, and nothing of it is written.
        at = now + 2 * step
        events = _stamped("w-3", at, at + timedelta(hours=2), at, now - timedelta(days=2))
        answer = post(first, events)
        assert answer.status_code == 422, answer.text
        details = answer.json()["detail"]
        assert [d["loc"] for d in details] == ["body.events.1.timestamp", "body.events.3.timestamp"]
        assert "event w-3#2: timestamp" in details[0]["msg"]
        assert "1 h after the plant clock" in details[0]["msg"]
        _nothing_was_written(first, [events[0], events[2]])


def test_nul_characters_are_refused_cleanly_everywhere(pl: Plant) -> None:
    with _http(pl) as http:
        login = http.post("/api/v1/auth/token", json={"username": "ad\x00min", "password": "x"})
        assert login.status_code == 422, login.text
        assert login.json()["detail"][0]["loc"] == "body.username"

        events = _events(pl, f"{pl.p}-nul\x00source", 1)
        ingest = http.post("/api/v1/plant-events/batch", json={"events": events})
        assert ingest.status_code == 422, ingest.text
        assert ingest.json()["detail"][0]["loc"] == "body.events.0.source"

        query = http.get("/api/v1/equipment", params={"level": "line\x00"})
        assert query.status_code == 422, query.text
        assert query.json()["detail"][0]["loc"] == "query.level"

        path = http.get("/api/v1/equipment/A%00B")
        assert path.status_code == 422, path.text

        # Six characters that merely spell the escape are text like any other.
        spelled = http.post(
            "/api/v1/auth/token", json={"username": "ad\\u0000min", "password": "x"}
        )
        assert spelled.status_code == 401, spelled.text
