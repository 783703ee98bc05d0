"""Every endpoint names the roles it admits, and refuses callers without credentials."""

from __future__ import annotations

import re

import httpx

from mes_core.client import MesClient


def _operations(mes_url: str) -> list[tuple[str, str, str]]:
    spec = httpx.get(f"{mes_url}/openapi.json").json()
    return [
        (method.upper(), path, op.get("description", ""))
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]


def test_every_api_endpoint_names_its_roles(mes_url: str) -> None:
    unnamed = [
        (m, p)
        for m, p, desc in _operations(mes_url)
        if p.startswith("/api/") and "**Roles:**" not in desc
    ]
    assert unnamed == []


def test_unauthenticated_calls_are_refused_with_401(mes_url: str) -> None:
    checked = 0
    with httpx.Client(base_url=mes_url) as raw:
        for method, path, desc in _operations(mes_url):
            if not path.startswith("/api/") or "open (no authentication)" in desc:
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            r = raw.request(method, url, json={})
            assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
            assert r.json()["rule"] == "NOT_AUTHENTICATED"
            checked += 1
    assert checked > 30


def test_admin_only_endpoints_refuse_other_roles_with_403(mes_url: str, admin: MesClient) -> None:
    from mes_core_factories import plant

    pl = plant(mes_url, admin)
    with httpx.Client(base_url=mes_url) as raw:
        for who in ("op", "sup", "qa"):
            token = pl.person(who).token
            headers = {"Authorization": f"Bearer {token}"}
            r = raw.post("/api/v1/master-data", json={}, headers=headers)
            assert r.status_code == 403, who
            assert "admin" in r.json()["message"]
            r = raw.post("/api/v1/auth/api-keys", json={"name": "x"}, headers=headers)
            assert r.status_code == 403, who
    refusals = [
        e
        for e in admin.audit_entries(action="refused", limit=10_000)
        if e.detail["rule"] == "FORBIDDEN" and e.detail["attempted"] == "POST /api/v1/master-data"
    ]
    assert {e.actor for e in refusals} >= {pl.c(w) for w in ("op", "sup", "qa")}
    pl.close()


def test_token_in_the_url_only_for_the_event_stream(mes_url: str, admin: MesClient) -> None:
    with httpx.Client(base_url=mes_url) as raw:
        params = {"access_token": admin.token or "", "after": 0, "limit": 1}
        r = raw.get("/api/v1/events/stream", params=params)
        assert r.status_code == 200 and "id: 1" in r.text
        r = raw.get("/api/v1/job-orders", params={"access_token": admin.token or ""})
        assert r.status_code == 401 and "event stream" in r.json()["message"]
