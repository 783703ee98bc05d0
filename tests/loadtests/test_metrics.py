"""The MES's Prometheus view: ``/metrics`` exposes the series a go-live load test reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mes_core.observability import install
from mes_core.observability.middleware import newest_event_timestamp


def _app(holds: dict[str, int]) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/job-orders/{job_order_id}")
    def job_order(job_order_id: str) -> dict[str, str]:
        return {"id": job_order_id}

    @app.post("/api/v1/plant-events/batch")
    def ingest(body: dict[str, list[dict[str, object]]]) -> dict[str, object]:
        n = len(body["events"])
        return {"accepted": n - 1, "duplicates": 1, "received_at": datetime.now(UTC).isoformat()}

    install(app, open_holds=lambda: holds)
    return app


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_endpoint_exposes_latency_by_route_template_not_by_path() -> None:
    client = TestClient(_app({}))
    before = _samples(client.get("/metrics").text)
    for jo in ("JO-1", "JO-2", "JO-3"):
        assert client.get(f"/api/v1/job-orders/{jo}").status_code == 200
    client.get("/no/such/path")
    after = _samples(client.get("/metrics").text)
    name = "mestwin_http_request_duration_seconds_count"
    route = "/api/v1/job-orders/{job_order_id}"
    grown = _value(after, name, method="GET", route=route, status="200") - _value(
        before, name, method="GET", route=route, status="200"
    )
    assert grown == 3
    assert _value(after, name, method="GET", route="<unmatched>", status="404") >= 1
    assert not any("JO-1" in dict(labels).get("route", "") for _, labels in after)


def test_metrics_endpoint_counts_ingest_events_lag_and_spool_depth() -> None:
    client = TestClient(_app({}))
    before = _samples(client.get("/metrics").text)
    stamp = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    events = [
        {"kind": "count", "source": "s", "sequence": i, "work_unit": "F1", "timestamp": stamp}
        for i in range(1, 6)
    ]
    response = client.post(
        "/api/v1/plant-events/batch",
        json={"events": events},
        headers={"X-Mestwin-Spool-Depth": "42", "X-Mestwin-Collector": "line-1"},
    )
    assert response.status_code == 200
    after = _samples(client.get("/metrics").text)

    def grown(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grown("mestwin_ingest_events_total", outcome="accepted") == 4
    assert grown("mestwin_ingest_events_total", outcome="duplicate") == 1
    assert grown("mestwin_ingest_batches_total") == 1
    assert grown("mestwin_ingest_lag_seconds_count") == 1
    # The event was stamped two seconds ago, so the lag observed is at least that.
    assert grown("mestwin_ingest_lag_seconds_sum") >= 2.0
    assert _value(after, "mestwin_connector_spool_depth", collector="line-1") == 42


def test_metrics_endpoint_reads_open_holds_at_scrape_time() -> None:
    holds = {"material_lot": 2, "job_order": 1}
    client = TestClient(_app(holds))
    first = _samples(client.get("/metrics").text)
    assert _value(first, "mestwin_open_holds", object="material_lot") == 2
    assert _value(first, "mestwin_open_holds", object="job_order") == 1
    holds["material_lot"] = 0
    second = _samples(client.get("/metrics").text)
    assert _value(second, "mestwin_open_holds", object="material_lot") == 0


def test_newest_event_timestamp_reads_the_last_event_of_a_body() -> None:
    body = (
        b'{"events":[{"timestamp":"2026-01-01T00:00:00+00:00"},'
        b'{"timestamp": "2026-01-01T00:00:05Z"}]}'
    )
    assert newest_event_timestamp(body) == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert newest_event_timestamp(b'{"events":[]}') is None
    assert newest_event_timestamp(b'{"timestamp":"2026-01-01T00:00:00"}') is None


def test_mes_app_exposes_every_named_series_and_counts_open_holds(tmp_path: Path) -> None:
    from loadtests.config import Seed
    from loadtests.seed import build_master_data
    from mes_core.api.app import create_app
    from mes_core.persistence.migrate import upgrade
    from mes_core.settings import Settings

    url = f"sqlite:///{tmp_path / 'mes.db'}"
    upgrade(url)
    # A Prometheus on this host (TestClient calls itself "testclient", not loopback).
    client = TestClient(create_app(Settings(database_url=url)), client=("127.0.0.1", 50000))
    token = client.post("/api/v1/auth/token", json={"username": "admin", "password": "admin"})
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    data, manifest = build_master_data("M", Seed(work_units_per_class=1, operators=1), "pw")
    loaded = client.post("/api/v1/master-data", json=data.model_dump(mode="json"), headers=auth)
    assert loaded.status_code == 201, loaded.text
    held = client.post(
        f"/api/v1/material-lots/{manifest.lots[0]}/hold", json={"reason": "test"}, headers=auth
    )
    assert held.status_code == 200, held.text
    key = client.post(
        "/api/v1/auth/api-keys", json={"name": "metrics-test", "role": "integration"}, headers=auth
    ).json()["api_key"]
    stamp = datetime.now(UTC).isoformat()
    event = {"kind": "state", "source": "t", "sequence": 1, "work_unit": manifest.packers[0],
             "timestamp": stamp, "state": "running"}  # fmt: skip
    ingested = client.post(
        "/api/v1/plant-events/batch",
        json={"events": [event]},
        headers={"X-API-Key": key, "X-Mestwin-Spool-Depth": "3", "X-Mestwin-Collector": "c1"},
    )
    assert ingested.status_code == 200, ingested.text
    text = client.get("/metrics").text
    for series in (
        "mestwin_http_request_duration_seconds_bucket",
        "mestwin_ingest_events_total",
        "mestwin_ingest_batches_total",
        "mestwin_ingest_lag_seconds_bucket",
        "mestwin_connector_spool_depth",
        "mestwin_open_holds",
    ):
        assert series in text, series
    samples = _samples(text)
    assert _value(samples, "mestwin_open_holds", object="material_lot") == 1
    assert _value(samples, "mestwin_connector_spool_depth", collector="c1") == 3
    route = "/api/v1/material-lots/{code}/hold"
    name = "mestwin_http_request_duration_seconds_count"
    assert _value(samples, name, method="POST", route=route, status="200") >= 1
