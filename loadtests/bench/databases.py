"""Throwaway databases for benchmarks: a fresh PostgreSQL database (created from the
server named by ``MESTWIN_BENCH_POSTGRES_URL``, else ``MESTWIN_TEST_POSTGRES_URL``, and
dropped afterwards) or a fresh SQLite file in a temporary folder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENVS = ("MESTWIN_BENCH_POSTGRES_URL", "MESTWIN_TEST_POSTGRES_URL")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_server_url() -> str:
    """The URL of a PostgreSQL database the benchmark may connect to (to create its own)."""
    for name in POSTGRES_ENVS:
        if os.environ.get(name):
            return os.environ[name]
    return DEFAULT_POSTGRES


@contextmanager
def throwaway_postgres(
    server_url: str | None = None, prefix: str = "mestwin_bench"
) -> Iterator[str]:
    """Create an empty database on the server of ``server_url``; yield its URL; drop it."""
    base = make_url(server_url or postgres_server_url())
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def throwaway_sqlite(folder: Path) -> Iterator[str]:
    """A fresh SQLite file URL in ``folder`` (the caller owns the folder)."""
    path = folder / f"bench-{uuid.uuid4().hex[:8]}.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
