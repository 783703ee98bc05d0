"""Values that would poison the record are refused whole, naming where (issue 21, item 9):
non-finite measurements, timestamps outside the plant-time window, NUL characters."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from mes_core_factories import Plant

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


def test_plant_time_window_holds_every_shipped_plant_and_scenario() -> None:
    # Plant time is the plant's calendar, not the wall clock: every shipped plant model
    # starts inside the default window, with years of simulated time to spare.
    settings = Settings()
    starts = []
    for path in sorted(PLANT_MODELS.glob("*.yaml")):
        # The plant's `start:` line (the first one, under `plant:`), without parsing the
        # whole file (the reference plant is large for PyYAML's pure-Python loader).
        found = re.search(r"^  start: (\S+)$", path.read_text(), re.MULTILINE)
        assert found is not None, path
        start = datetime.fromisoformat(found.group(1))
        starts.append(start)
        assert settings.plant_time_earliest <= start
        assert start.replace(year=start.year + 50) <= settings.plant_time_latest
    assert starts


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
