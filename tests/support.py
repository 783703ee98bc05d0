"""Suite-wide test helpers (import as ``from support import require``).

In CI (``MESTWIN_TEST_REQUIRE_ALL=1``, set by ``.ci/run``) nothing the tests need may be
missing: PostgreSQL, Chromium and node-opcua are all there, so a test that would skip for
want of one fails instead. On a developer's machine such tests skip with the reason.
"""

from __future__ import annotations

import os

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
