"""``POST /api/v1/plant-events/batch`` over HTTP (rule 6): the body is validated from its
JSON bytes, yet answers as a declared body would: a bad event is a 422 naming it and
nothing of its batch is stored; credentials come first (401, then 403 audited); the
OpenAPI document describes the request body in full."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from mes_core_factories import Plant

PATH = "/api/v1/plant-events/batch"


@pytest.fixture
def connector(pl: Plant) -> Iterator[httpx.Client]:
    key = pl.admin.create_api_key(pl.c("conn")).api_key
    with httpx.Client(base_url=pl.url, headers={"X-API-Key": key}) as client:
        yield client


def _count(pl: Plant, seq: int, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "count",
        "source": pl.c("src"),
        "sequence": seq,
        "work_unit": pl.c("FILL"),
        "timestamp": datetime(2026, 3, 2, 8, 0, seq, tzinfo=UTC).isoformat(),
        "good": 1,
        **fields,
    }


def test_a_bad_event_is_422_naming_it_and_nothing_of_its_batch_is_stored(
    pl: Plant, connector: httpx.Client
) -> None:
    events = [_count(pl, 1), _count(pl, 2, good=-3), _count(pl, 3)]
    r = connector.post(PATH, json={"events": events})
    assert r.status_code == 422
    body = r.json()
    assert body["rule"] == "VALIDATION"
    assert [d["loc"] for d in body["detail"]] == ["body.events.1.count.good"]
    assert "body.events.1.count.good" in body["message"]
    # The same events, the bad one mended, are all new: none was stored.
    events[1]["good"] = 3
    r = connector.post(PATH, json={"events": events})
    assert r.status_code == 200
    assert (r.json()["accepted"], r.json()["duplicates"]) == (3, 0)


def test_malformed_json_and_unknown_fields_are_422(pl: Plant, connector: httpx.Client) -> None:
    r = connector.post(PATH, content=b'{"events": [', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.json()["message"]
    r = connector.post(PATH, json={"events": [_count(pl, 1, colour="red")]})
    assert r.status_code == 422
    assert [d["loc"] for d in r.json()["detail"]] == ["body.events.0.count.colour"]
    r = connector.post(PATH, json={"events": [{**_count(pl, 1), "kind": "smell"}]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == "body.events.0"


def test_credentials_are_checked_before_the_body(pl: Plant) -> None:
    with httpx.Client(base_url=pl.url) as raw:
        r = raw.post(PATH, content=b"not json", headers={"content-type": "application/json"})
        assert r.status_code == 401
        operator = {"Authorization": f"Bearer {pl.person('op').token}"}
        r = raw.post(PATH, content=b"not json", headers=operator)
        assert r.status_code == 403
    refusals = [
        e
        for e in pl.admin.audit_entries(action="refused", limit=10_000)
        if e.detail["attempted"] == f"POST {PATH}" and e.actor == pl.c("op")
    ]
    assert len(refusals) == 1


def test_openapi_documents_the_batch_body_without_dangling_references(mes_url: str) -> None:
    spec = httpx.get(f"{mes_url}/openapi.json").json()
    body = spec["paths"][PATH]["post"]["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    kinds = {
        v["properties"]["kind"]["const"] for v in schema["properties"]["events"]["items"]["oneOf"]
    }
    assert kinds == {"state", "count", "measurement", "alarm"}
    assert "$defs" not in json.dumps(schema)
