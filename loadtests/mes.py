"""Start the MES under test: migrate its database, serve it with uvicorn workers.

With more than one worker, ``PROMETHEUS_MULTIPROC_DIR`` is pointed at a fresh folder so
that ``/metrics`` aggregates every worker (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadtests.servers import uvicorn_server
from mes_core.client.local import mestwin_command

MES_APP = "mes_core.api.app:app_factory"


@contextmanager
def running_mes(
    database_url: str,
    *,
    admin_password: str,
    workers: int = 1,
    log_dir: Path,
    pids: list[int] | None = None,
) -> Iterator[str]:
    """Serve the MES on ``database_url`` on a free loopback port; yields its base URL
    (``pids``: see :func:`~loadtests.servers.uvicorn_server`)."""
    env = {"MESTWIN_DATABASE_URL": database_url, "MESTWIN_ADMIN_PASSWORD": admin_password}
    # The MES's own migration step, as an operator would run it (idempotent): the load
    # tests reach the MES through its command and API only, never its internals.
    subprocess.run(
        [*mestwin_command(), "db", "upgrade"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=300,
    )
    multiproc = tempfile.mkdtemp(prefix="mestwin-prom-") if workers > 1 else None
    if multiproc:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiproc
    try:
        with uvicorn_server(
            MES_APP,
            env=env,
            workers=workers,
            factory=True,
            health_path="/health",
            log_path=log_dir / "mes.log",
            pids=pids,
        ) as url:
            yield url
    finally:
        if multiproc:
            shutil.rmtree(multiproc, ignore_errors=True)
