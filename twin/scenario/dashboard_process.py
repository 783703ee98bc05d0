"""``mestwin run --dashboard``: the live dashboards beside a run, for a trainer to watch.

The dashboards are a part of their own that reads the MES's public API; the runner starts
them the way a user would, with their command (``mestwin dashboard``) as a child process
pointed at the run's MES, and stops them when the run ends. The password travels in the
environment, not on the command line, so it does not show in the process list.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from mes_core.client.local import browsable_url, free_port, mestwin_command
from twin.scenario.sut import RunControlAccess


class DashboardProcess:
    """``mestwin dashboard`` on ``<host>:<port>`` (loopback unless asked) over the MES at
    ``mes_url``."""

    def __init__(
        self,
        mes_url: str,
        user: str,
        password: str,
        log_path: Path,
        report: Path | None = None,
        port: int = 0,
        control: RunControlAccess | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.mes_url = mes_url
        self.user = user
        self.password = password
        self.log_path = log_path
        self.report = report
        self.port = port or free_port()
        self.control = control
        self.host = host
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where to open them (on all interfaces: the machine's name)."""
        return browsable_url(self.host, self.port)

    def start(self) -> None:
        command = [*mestwin_command(), "dashboard", "--mes-url", self.mes_url]
        command += ["--host", self.host, "--port", str(self.port), "--user", self.user]
        if self.report is not None:
            command += ["--report", str(self.report)]
        env = {**os.environ, "MESTWIN_DASHBOARD_PASSWORD": self.password}
        if self.control is not None:
            # The run's control channel: trainer console, trainees' session record. The
            # token and the trainer's password stay out of the process list, like the
            # password; the dashboards act at the plant's time (a simulated run's clock).
            command += ["--act-at-plant-time"]
            env["MESTWIN_RUN_CONTROL_URL"] = self.control.url
            env["MESTWIN_RUN_CONTROL_TOKEN"] = self.control.token
            env["MESTWIN_TRAINER_PASSWORD"] = self.control.trainer_password
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self) -> None:
        """SIGTERM the dashboards (and anything they started), SIGKILL after a grace period."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
