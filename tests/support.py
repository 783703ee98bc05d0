"""Suite-wide test helpers (import as ``from support import require``).

In CI (``MESTWIN_TEST_REQUIRE_ALL=1``, set by ``.ci/run``) nothing the tests need may be
missing: PostgreSQL, Chromium and node-opcua are all there, so a test that would skip for
want of one fails instead. On a developer's machine such tests skip with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_ALL = os.environ.get("MESTWIN_TEST_REQUIRE_ALL") == "1"


def require(condition: bool, what: str) -> None:
    """Skip the calling test unless ``condition``; in CI, fail instead of skipping."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"{what} is required in CI (MESTWIN_TEST_REQUIRE_ALL=1) but missing")
    pytest.skip(f"{what} is not available here")


@contextlib.contextmanager
def exclusively(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``flock`` on the directory itself): one holder
    at a time among the xdist workers of a run, and among runs side by side."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def npm_installed(folder: Path, package: str, what: str) -> str:
    """``node``, with ``folder``'s npm packages installed (``npm ci`` from its committed
    lock file, the first time: ``package`` not in ``node_modules`` yet). Workers install
    one at a time: ``npm ci`` deletes ``node_modules`` first, under a running test."""
    node = shutil.which("node")
    require(node is not None, f"node (Node.js) for {what}")
    assert node is not None
    with exclusively(folder):
        if not (folder / "node_modules" / package).is_dir():
            npm = shutil.which("npm")
            require(npm is not None, f"npm to install {package}")
            assert npm is not None
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            require(done.returncode == 0, f"{package} from npm (npm ci said: {done.stderr[-500:]})")
    return node


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
