"""The API workers' credential cache (issue 8) never outlives a change of credentials.

On PostgreSQL each worker keeps the actors it resolved and drops them when the database
announces a change of ``auth_token`` or ``person`` (``mes_core.persistence.auth_cache``).
These tests change credentials behind the API's back, as a DBA or a master-data load
would, and check that the API follows within the notification's delivery; and that the
cache is off whenever its listener is not known to be listening.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from mes_core_factories import ADMIN_PASSWORD
from sqlalchemy import create_engine, text
from support import postgres_url, require, throwaway_postgres

from mes_core.client import MesClient
from mes_core.client.errors import MesClientError
from mes_core.demo import ServerThread
from mes_core.persistence import auth_cache
from mes_core.persistence.auth_cache import CredentialCache
from mes_core.persistence.migrate import upgrade
from mes_core.persistence.security import Actor
from mes_core.schemas.masterdata import PersonCreate
from mes_core.settings import Settings

#: How long a change may take to reach the API (a notification on one host: ~1 ms).
PROPAGATION_S = 3.0
ACTOR = Actor("op1", frozenset({"operator"}), 1, "op1")


def eventually(check: Callable[[], bool], within: float = PROPAGATION_S) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


# --- the cache alone --------------------------------------------------------------------


def test_an_unlistened_cache_is_not_used() -> None:
    cache = CredentialCache()
    cache.put("d", ACTOR, None, cache.generation)
    assert cache.get("d") is None  # never live: nothing kept, nothing given


def test_a_resolution_older_than_a_change_is_not_kept() -> None:
    cache = CredentialCache()
    cache.invalidate(live=True)
    cache.confirm()
    before = cache.generation  # a request starts resolving...
    cache.invalidate(live=True)  # ...a change is announced meanwhile...
    cache.put("d", ACTOR, None, before)  # ...its answer may be stale: not kept
    assert cache.get("d") is None
    cache.put("d", ACTOR, None, cache.generation)
    hit = cache.get("d")
    assert hit is not None and hit.actor == ACTOR


def test_the_cache_falls_out_of_use_without_news_from_its_listener(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = CredentialCache()
    cache.invalidate(live=True)
    cache.confirm()
    cache.put("d", ACTOR, None, cache.generation)
    assert cache.get("d") is not None
    now = time.monotonic()
    monkeypatch.setattr(auth_cache.time, "monotonic", lambda: now + auth_cache.TRUST_FOR_S + 1)
    assert not cache.live and cache.get("d") is None


def test_entries_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = CredentialCache()
    cache.invalidate(live=True)
    cache.put("d", ACTOR, None, cache.generation)
    now = time.monotonic()
    monkeypatch.setattr(auth_cache.time, "monotonic", lambda: now + auth_cache.ENTRY_TTL_S + 1)
    cache.confirm()  # the listener is fine; the entry itself is too old
    assert cache.get("d") is None


# --- the API on PostgreSQL --------------------------------------------------------------


@pytest.fixture
def pg_mes() -> Iterator[tuple[str, str, CredentialCache]]:
    """A running MES on a fresh PostgreSQL database: (API URL, database URL, its cache)."""
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_authcache") as url:
        upgrade(url)
        settings = Settings(database_url=url, admin_password=ADMIN_PASSWORD)
        with ServerThread(settings) as server:
            cache = server.server.config.app.state.credential_cache
            assert isinstance(cache, CredentialCache)
            assert eventually(lambda: cache.live), "the listener never started listening"
            yield server.url, url, cache


def _sql(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def _operator(api: str, code: str) -> MesClient:
    with MesClient(api).login("admin", ADMIN_PASSWORD) as admin:
        admin.create_person(
            PersonCreate.model_validate(
                {"code": code, "name": code, "roles": ["operator"], "password": "pw-123456"}
            )
        )
    return _operator_login(api, code)


def _operator_login(api: str, code: str) -> MesClient:
    return MesClient(api).login(code, "pw-123456")


def _status(call: Callable[[], object]) -> int:
    try:
        call()
    except MesClientError as exc:
        return exc.status
    return 200


def test_a_deactivated_person_is_refused_at_once(
    pg_mes: tuple[str, str, CredentialCache],
) -> None:
    api, url, cache = pg_mes
    with _operator(api, "op-deact") as op:
        assert op.whoami().name == "op-deact"
        assert op.whoami().name == "op-deact"  # now from the cache
        assert len(cache._entries) >= 1
        _sql(url, "UPDATE person SET active = false WHERE code = 'op-deact'")
        assert eventually(lambda: _status(op.whoami) == 401)


def test_a_role_taken_away_is_refused(pg_mes: tuple[str, str, CredentialCache]) -> None:
    api, url, _ = pg_mes
    with _operator(api, "op-role") as op:
        assert op.whoami().roles == ["operator"]
        _sql(url, "UPDATE person SET roles = 'quality' WHERE code = 'op-role'")
        assert eventually(lambda: op.whoami().roles == ["quality"])


def test_a_deleted_or_expired_token_is_refused(pg_mes: tuple[str, str, CredentialCache]) -> None:
    api, url, _ = pg_mes
    with _operator(api, "op-del") as first, _operator_login(api, "op-del") as second:
        assert first.whoami().name == second.whoami().name == "op-del"
        _sql(url, "DELETE FROM auth_token WHERE name = 'op-del' AND kind = 'token'")
        assert eventually(lambda: _status(first.whoami) == 401 == _status(second.whoami))
    with _operator_login(api, "op-del") as third:
        assert third.whoami().name == "op-del"
        _sql(
            url,
            "UPDATE auth_token SET expires_at = now() - interval '1 minute' WHERE name = 'op-del'",
        )
        assert eventually(lambda: _status(third.whoami) == 401)


def test_without_its_listener_the_api_resolves_from_the_database(
    pg_mes: tuple[str, str, CredentialCache],
) -> None:
    api, url, cache = pg_mes
    with _operator(api, "op-cut") as op:
        assert op.whoami().name == "op-cut"
        # Cut the listener's connection: the cache goes out of use at once...
        _sql(
            url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = current_database() AND application_name = '{auth_cache.APP_NAME}'",
        )
        assert eventually(lambda: not cache.live)
        assert op.whoami().name == "op-cut"  # ...and the API still answers, from the DB
        # ...and comes back once the listener listens again.
        assert eventually(lambda: cache.live, within=auth_cache.RECONNECT_AFTER_S + 10)
        _sql(url, "UPDATE person SET active = false WHERE code = 'op-cut'")
        assert eventually(lambda: _status(op.whoami) == 401)


def test_without_the_triggers_the_cache_stays_off() -> None:
    """A database that does not announce credential changes (not migrated to 0003): the
    cache is never used, and the API resolves every request from the database."""
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_authcache_off") as url:
        upgrade(url)
        _sql(url, "DROP TRIGGER person_changed ON person")
        settings = Settings(database_url=url, admin_password=ADMIN_PASSWORD)
        with ServerThread(settings) as server:
            cache = server.server.config.app.state.credential_cache
            with _operator(server.url, "op-off") as op:
                assert op.whoami().name == "op-off"
                assert not eventually(lambda: cache.live, within=1.5)
                assert op.whoami().name == "op-off"
                assert not cache._entries
