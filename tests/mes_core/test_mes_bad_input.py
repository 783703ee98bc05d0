"""Bad input gets a clear 4xx, never a 500, and nothing is half-written."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from mes_core_factories import Plant

from mes_core.client import MesNotFound, MesValidationError
from mes_core.schemas.masterdata import MasterData


@pytest.fixture
def raw(pl: Plant) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {pl.admin.token}"}
    with httpx.Client(base_url=pl.url, headers=headers) as client:
        yield client


def test_malformed_json_is_422_with_message(raw: httpx.Client) -> None:
    r = raw.post(
        "/api/v1/job-orders",
        content=b'{"code": "X", ',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    body = r.json()
    assert body["rule"] == "VALIDATION" and "JSON" in body["message"]


def test_unknown_ids_are_404_naming_the_object(raw: httpx.Client, pl: Plant) -> None:
    for path in (
        "/api/v1/job-orders/NOPE",
        "/api/v1/material-lots/NOPE",
        "/api/v1/equipment/NOPE",
        "/api/v1/persons/NOPE",
        "/api/v1/routings/NOPE",
        "/api/v1/genealogy/NOPE",
    ):
        r = raw.get(path)
        assert r.status_code == 404, path
        assert r.json()["rule"] == "NOT_FOUND" and "NOPE" in r.json()["message"]
    with pytest.raises(MesNotFound):
        pl.admin.start_operation(pl.job_order(), 99)
    assert raw.get("/api/v1/no-such-endpoint").json()["rule"] == "NOT_FOUND"


@pytest.mark.parametrize("quantity", [-1, 0, 1e12, "NaN", "ten"])
def test_negative_absurd_or_wrongly_typed_quantities_are_422(
    raw: httpx.Client, pl: Plant, quantity: object
) -> None:
    jo = pl.job_order()
    pl.person("op").start_operation(jo, 1)
    r = raw.post(
        f"/api/v1/job-orders/{jo}/operations/1/consume",
        json={"lot": pl.c("B1"), "quantity": quantity},
    )
    assert r.status_code == 422
    assert "quantity" in r.json()["message"]
    assert pl.admin.get_lot(pl.c("B1")).quantity == 100


def test_wrong_types_and_unknown_fields_are_422(raw: httpx.Client, pl: Plant) -> None:
    r = raw.post("/api/v1/job-orders", json={"code": pl.c("J"), "product": 5, "quantity": 1})
    assert r.status_code == 422 and "product" in r.json()["message"]
    r = raw.post(
        "/api/v1/job-orders",
        json={"code": pl.c("J"), "product": pl.c("PROD"), "quantity": 1, "qty": 2},
    )
    assert r.status_code == 422 and "qty" in r.json()["message"]
    r = raw.post("/api/v1/job-orders/x/operations/abc/start", json={})
    assert r.status_code == 422
    r = raw.post("/api/v1/plant-events/batch", json={"events": [{"kind": "count"}]})
    assert r.status_code == 422


def test_oversized_payload_is_413(raw: httpx.Client) -> None:
    big = b'{"events": [' + b" " * (17 * 1024 * 1024) + b"]}"
    r = raw.post(
        "/api/v1/plant-events/batch", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["rule"] == "TOO_LARGE"


def test_too_many_events_in_one_batch_is_422(raw: httpx.Client, pl: Plant) -> None:
    event = {
        "kind": "count",
        "source": "s",
        "work_unit": pl.c("FILL"),
        "timestamp": "2026-01-01T00:00:00Z",
    }
    events = [{**event, "sequence": i} for i in range(1, 10_002)]
    r = raw.post("/api/v1/plant-events/batch", json={"events": events})
    assert r.status_code == 422


def test_failed_master_data_load_writes_nothing(pl: Plant, raw: httpx.Client) -> None:
    bad = MasterData.model_validate(
        {
            "materials": [{"code": pl.c("NEWMAT")}],
            "lots": [{"code": pl.c("NEWLOT"), "material": pl.c("UNKNOWN"), "quantity": 1}],
        }
    )
    with pytest.raises(MesNotFound):
        pl.admin.load_master_data(bad)
    assert raw.get(f"/api/v1/materials/{pl.c('NEWMAT')}").status_code == 404
    with pytest.raises(MesValidationError):
        pl.admin.create_job_order(
            __import__("mes_core.schemas.execution", fromlist=["x"]).JobOrderCreate(
                code=pl.c("J9"), product=pl.c("BOTTLE"), quantity=1
            )
        )
    assert raw.get(f"/api/v1/job-orders/{pl.c('J9')}").status_code == 404


def test_duplicate_code_is_409(raw: httpx.Client, pl: Plant) -> None:
    r = raw.post("/api/v1/materials", json={"code": pl.c("BOTTLE")})
    assert r.status_code == 409 and r.json()["rule"] == "CONFLICT"


def test_out_of_range_query_values_are_422_not_500(raw: httpx.Client) -> None:
    huge = str(2**70)
    assert raw.get("/api/v1/audit", params={"after_id": huge}).status_code == 422
    assert raw.get("/api/v1/job-orders", params={"offset": huge}).status_code == 422
    assert raw.get("/api/v1/job-orders", params={"limit": 0}).status_code == 422
    r = raw.get("/api/v1/events/stream", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["message"]
