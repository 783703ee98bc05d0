"""The MES as a child process the runner can start, kill and start again.

``mestwin serve`` runs in its own session (process group) so that a Ctrl-C in the
runner's terminal reaches the runner only; the runner then stops the MES itself, and a
"MES killed" fault is a real SIGKILL of the whole group, not a polite shutdown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def mestwin_command() -> list[str]:
    """How to call the ``mestwin`` console command from this interpreter."""
    script = Path(sys.executable).with_name("mestwin")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from mestwin.cli import main; main()"]


class MesProcess:
    """``mestwin serve`` on ``127.0.0.1:<port>`` against ``database_url``."""

    def __init__(
        self, database_url: str, log_path: Path, admin_password: str, port: int | None = None
    ) -> None:
        self.database_url = database_url
        self.admin_password = admin_password
        self.port = port or free_port()
        self.log_path = log_path
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
        """Bring the database schema up to date (``mestwin db upgrade``) when offered."""
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
        """Start the MES; returns at once (use the SUT's ``wait_ready``)."""
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [*mestwin_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.starts += 1

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
