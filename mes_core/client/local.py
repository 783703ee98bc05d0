"""A local MES as a child process: ``mestwin serve`` on a free loopback port.

For the parts that may use only the MES's public face (the twin's scenario runner, the
dashboards' and load tests' benchmarks): they start the MES the way an operator would, with
its own command, and then talk to it over HTTP. The child runs in its own session (process
group) so that a Ctrl-C in the parent's terminal reaches the parent only, which then stops
the MES itself; :meth:`LocalMes.kill` is a real SIGKILL of the whole group (uvicorn workers
included), as a "MES killed" fault needs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


def stop_process_group(proc: subprocess.Popen[Any] | None, grace: float = 10.0) -> None:
    """Stop a child started in its own process group (``start_new_session``): SIGTERM,
    then SIGKILL if it has not exited after ``grace`` seconds. Nothing if it has ended."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def browsable_url(host: str, port: int) -> str:
    """The URL a browser opens for a server bound to ``host:port``: on all interfaces
    (``0.0.0.0``, ``::``) the machine's name, which other machines can reach."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{port}"


def mestwin_command() -> list[str]:
    """How to call the ``mestwin`` console command from this interpreter."""
    script = Path(sys.executable).with_name("mestwin")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from mestwin.cli import main; main()"]


class LocalMes:
    """``mestwin serve`` on ``127.0.0.1:<port>`` against ``database_url``."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        admin_password: str,
        port: int | None = None,
        workers: int = 1,
    ) -> None:
        self.database_url = database_url
        self.admin_password = admin_password
        self.port = port or free_port()
        self.log_path = log_path
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["MESTWIN_DATABASE_URL"] = self.database_url
        env["MESTWIN_ADMIN_PASSWORD"] = self.admin_password
        return env

    def migrate(self) -> None:
        """Bring the database schema up to date (``mestwin db upgrade``)."""
        with self.log_path.open("ab") as log:
            subprocess.run(
                [*mestwin_command(), "db", "upgrade"],
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=300,
            )

    def start(self) -> None:
        """Start the MES; returns at once (see :meth:`wait_ready`)."""
        command = [*mestwin_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until ``/health`` answers; raises ``RuntimeError`` with the log's tail if
        the MES died or did not answer within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the MES exited while starting:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the MES did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the MES and everything it started (uvicorn workers included)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the MES's log, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> LocalMes:
        """Migrate, start and wait until ready."""
        self.migrate()
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
