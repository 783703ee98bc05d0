"""What answers without credentials (issue 21, item 13): /metrics only to clients on this
host unless MESTWIN_METRICS_PUBLIC says otherwise, or with the metrics token; the OpenAPI
document as MESTWIN_OPENAPI_PUBLIC says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from mes_core_factories import ADMIN_PASSWORD

from mes_core.api.app import create_app
from mes_core.api.exposure import is_loopback
from mes_core.persistence.migrate import upgrade
from mes_core.settings import Settings

TOKEN = "scrape-token-for-tests"


def _client(tmp_path: Path, host: str, **settings: Any) -> TestClient:
    url = f"sqlite:///{tmp_path / 'mes.db'}"
    if not (tmp_path / "mes.db").exists():
        upgrade(url)
    app = create_app(Settings(database_url=url, admin_password=ADMIN_PASSWORD, **settings))
    return TestClient(app, client=(host, 50000))


def test_metrics_are_open_to_this_host_only_by_default(tmp_path: Path) -> None:
    assert _client(tmp_path, "127.0.0.1").get("/metrics").status_code == 200
    assert _client(tmp_path, "::1").get("/metrics").status_code == 200
    remote = _client(tmp_path, "10.1.2.3", metrics_token=TOKEN)
    refused = remote.get("/metrics")
    assert refused.status_code == 401
    assert "MESTWIN_METRICS_TOKEN" in refused.json()["message"]
    assert remote.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = remote.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200
    assert "mestwin_open_holds" in scraped.text


def test_metrics_public_true_and_false_are_obeyed(tmp_path: Path) -> None:
    assert _client(tmp_path, "10.1.2.3", metrics_public="true").get("/metrics").status_code == 200
    local = _client(tmp_path, "127.0.0.1", metrics_public="false")
    assert local.get("/metrics").status_code == 401
    with_token = _client(tmp_path, "127.0.0.1", metrics_public="false", metrics_token=TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert with_token.get("/metrics", headers=headers).status_code == 200


def test_openapi_document_can_be_withheld(tmp_path: Path) -> None:
    assert _client(tmp_path, "10.1.2.3").get("/openapi.json").status_code == 200
    hidden = _client(tmp_path, "10.1.2.3", openapi_public=False)
    assert hidden.get("/openapi.json").status_code == 404
    assert hidden.get("/docs").status_code == 404
    assert hidden.get("/docs/static/swagger-ui.css").status_code == 404  # assets neither


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("::1")
    assert not is_loopback("10.0.0.1") and not is_loopback(None) and not is_loopback("testclient")


def test_docs_work_offline_from_local_assets(tmp_path: Path) -> None:
    """/docs loads Swagger UI from the MES itself, never from a CDN (issue 15)."""
    client = _client(tmp_path, "127.0.0.1")
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text.split("<body>")[-1]
    assert "/docs/static/swagger-ui-bundle.js" in page.text
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.text
    assert client.get("/docs/static/swagger-ui.css").status_code == 200
