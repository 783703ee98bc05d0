"""Revocation (issue 21, item 5): logout revokes the token presented, an admin revokes an
API key by name, API keys expire (90 days unless told otherwise); on PostgreSQL the
revocation reaches every worker's credential cache at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from mes_core_factories import ADMIN_PASSWORD, Plant
from support import postgres_url, require, throwaway_postgres

from mes_core.client import MesClient
from mes_core.client.errors import MesClientError
from mes_core.demo import ServerThread
from mes_core.persistence.auth_cache import CredentialCache
from mes_core.persistence.migrate import upgrade
from mes_core.settings import Settings


def _status(call: Callable[[], object]) -> int:
    try:
        call()
    except MesClientError as exc:
        return exc.status
    return 200


def test_logout_revokes_the_token_at_once(pl: Plant) -> None:
    op = MesClient(pl.url).login(pl.c("op"), "pw")
    stale = MesClient(pl.url, token=op.token)
    try:
        for _ in range(3):  # in the worker's credential cache on PostgreSQL
            assert stale.whoami().name == pl.c("op")
        op.logout()
        assert _status(stale.whoami) == 401
        audit = pl.admin.audit_entries(action="auth.logout")
        assert any(e.actor == pl.c("op") for e in audit)
    finally:
        op.close()
        stale.close()


def test_an_admin_revokes_every_token_of_a_person(pl: Plant) -> None:
    with (
        MesClient(pl.url).login(pl.c("sup"), "pw") as first,
        MesClient(pl.url).login(pl.c("sup"), "pw") as second,
    ):
        assert first.whoami().name == second.whoami().name == pl.c("sup")
        pl.admin.revoke_tokens(pl.c("sup"))
        assert _status(first.whoami) == _status(second.whoami) == 401
    assert _status(lambda: pl.admin.revoke_tokens(f"{pl.p}-nobody")) == 404


def test_api_keys_expire_by_default_and_can_be_revoked_by_name(pl: Plant) -> None:
    created = pl.admin.create_api_key(f"{pl.p}-erp")
    assert created.expires_at is not None
    days = (created.expires_at - datetime.now(UTC)) / timedelta(days=1)
    assert 89.9 < days <= 90
    with MesClient(pl.url, api_key=created.api_key) as erp:
        for _ in range(3):
            assert erp.whoami().name == f"api_key:{pl.p}-erp"
        pl.admin.revoke_api_key(f"{pl.p}-erp")
        assert _status(erp.whoami) == 401
    assert _status(lambda: pl.admin.revoke_api_key(f"{pl.p}-erp")) == 404


def test_an_api_key_past_its_expiry_is_refused(pl: Plant) -> None:
    short = pl.admin.create_api_key(f"{pl.p}-short", expires_in_days=1.5 / 86400)
    with MesClient(pl.url, api_key=short.api_key) as key:
        assert key.whoami().name == f"api_key:{pl.p}-short"
        time.sleep(2)
        assert _status(key.whoami) == 401


@pytest.fixture
def two_workers() -> Iterator[tuple[str, str]]:
    """Two API "workers" on one PostgreSQL database: two apps, each with its own cache."""
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_revoke") as url:
        upgrade(url)
        settings = Settings(database_url=url, admin_password=ADMIN_PASSWORD)
        with ServerThread(settings) as a, ServerThread(settings) as b:
            for server in (a, b):
                cache = server.server.config.app.state.credential_cache
                assert isinstance(cache, CredentialCache)
                deadline = time.monotonic() + 10
                while not cache.live:
                    assert time.monotonic() < deadline, "the listener never started"
                    time.sleep(0.02)
            yield a.url, b.url


@pytest.mark.postgres
def test_revocation_reaches_the_other_workers_cache(two_workers: tuple[str, str]) -> None:
    a, b = two_workers
    with MesClient(a).login("admin", ADMIN_PASSWORD) as admin_a:
        key = admin_a.create_api_key("two-workers").api_key
        token = MesClient(a).login("admin", ADMIN_PASSWORD).token
        with (
            MesClient(b, api_key=key) as key_b,
            MesClient(b, token=token) as token_b,
            MesClient(a, token=token) as token_a,
        ):
            for _ in range(3):  # cached by worker b
                assert key_b.whoami().name == "api_key:two-workers"
                assert token_b.whoami().name == "admin"
            admin_a.revoke_api_key("two-workers")
            token_a.logout()
            # The change is announced by the database when it commits; worker b drops
            # its cache on the notification (a millisecond on one host). Without it the
            # entries would live ENTRY_TTL_S (60 s): 2 s tells the two apart.
            deadline = time.monotonic() + 2
            while _status(key_b.whoami) != 401 or _status(token_b.whoami) != 401:
                assert time.monotonic() < deadline, "worker b still accepts revoked credentials"
                time.sleep(0.01)
