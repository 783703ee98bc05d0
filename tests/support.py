"""Suite-wide test helpers (import as ``from support import require``).

In CI (``MESTWIN_TEST_REQUIRE_ALL=1``, set by ``.ci/run``) nothing the tests need may be
missing: PostgreSQL, Chromium and node-opcua are all there, so a test that would skip for
want of one fails instead. On a developer's machine such tests skip with the reason.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

REQUIRE_ALL = os.environ.get("MESTWIN_TEST_REQUIRE_ALL") == "1"


def require(condition: bool, what: str) -> None:
    """Skip the calling test unless ``condition``; in CI, fail instead of skipping."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"{what} is required in CI (MESTWIN_TEST_REQUIRE_ALL=1) but missing")
    pytest.skip(f"{what} is not available here")


def postgres_url() -> str | None:
    """The PostgreSQL URL the PostgreSQL variants of tests run against, if any."""
    return os.environ.get("MESTWIN_TEST_POSTGRES_URL") or None


@contextlib.contextmanager
def throwaway_postgres(prefix: str = "mestwin_test") -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL) on MESTWIN_TEST_POSTGRES_URL's server,
    dropped on exit. Tests never create tables in the shared database itself."""
    base = postgres_url()
    if base is None:
        raise RuntimeError("MESTWIN_TEST_POSTGRES_URL is not set")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(base).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
