"""Run Locust headless as subprocesses: alone, or as a master with local workers.

Locust runs on gevent and monkey-patches the interpreter, so it never runs inside the
``mestwin`` process: each load generator is its own ``locust`` process, which is also how it
spreads over hosts (``--master`` here, ``--worker --master-host ...`` there; see README).
Locust is started in the output folder so that a ``[tool.locust]`` table of whatever
project the user stands in cannot change the run behind our back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.slo import RequestStats, read_stats

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class LocustRun:
    """What a finished run left behind."""

    stats: dict[str, RequestStats]
    csv_prefix: Path
    html: Path
    log: Path
    returncode: int


class LocustError(RuntimeError):
    """Locust did not run to the end; the message quotes the tail of its log."""


def free_port() -> int:
    """A TCP port free on the loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _locust() -> list[str]:
    # The locust of this interpreter's environment, whatever is first on PATH.
    return [sys.executable, "-m", "locust"]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run_locust(
    *,
    host: str,
    users: int,
    spawn_rate: float,
    run_time_s: float,
    out_dir: Path,
    locustfile: Path = LOCUSTFILE,
    env: Mapping[str, str] | None = None,
    workers: int = 0,
    user_classes: Sequence[str] = (),
    name: str = "locust",
    reset_stats: bool = False,
) -> LocustRun:
    """Run Locust headless for ``run_time_s`` seconds and read its statistics.

    With ``workers`` > 0 a master and that many worker processes run on the loopback; the
    master waits for all of them before it spawns users, and its CSV aggregates them all.
    ``reset_stats`` drops what was measured while users were still spawning (their log-ins,
    mostly), so that the figures are those of the steady state.
    """
    # Absolute: Locust runs with out_dir as its working folder, where a relative path would
    # point one level deeper (issue 21, item 1: `mestwin loadtest` from another folder).
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_prefix = out_dir / name
    html = out_dir / f"{name}.html"
    log = out_dir / f"{name}.log"
    run_time = f"{max(1, round(run_time_s))}s"
    child_env = {**os.environ, **(env or {})}
    common = [
        "-f",
        str(locustfile.resolve()),
        *user_classes,
        *(["--reset-stats"] if reset_stats else []),
    ]
    master = [
        *_locust(),
        *common,
        "--headless",
        "--host",
        host,
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        run_time,
        "--csv",
        str(csv_prefix),
        "--html",
        str(html),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
        "--logfile",
        str(log),
    ]
    worker_procs: list[subprocess.Popen[bytes]] = []
    if workers > 0:
        port = free_port()
        master += [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(workers),
            "--expect-workers-max-wait",
            "60",
        ]
        for index in range(workers):
            worker_log = out_dir / f"{name}-worker{index}.log"
            worker_procs.append(
                subprocess.Popen(
                    [
                        *_locust(),
                        *common,
                        "--worker",
                        "--master-host",
                        "127.0.0.1",
                        "--master-port",
                        str(port),
                        "--loglevel",
                        "WARNING",
                        "--logfile",
                        str(worker_log),
                    ],
                    cwd=out_dir,
                    env=child_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    # Generous bound: spawn, run, stop timeout, report; a hung Locust must not hang us.
    deadline = run_time_s + users / max(spawn_rate, 0.1) + 90
    try:
        with (out_dir / f"{name}.stdout").open("wb") as stdout:
            done = subprocess.run(
                master,
                cwd=out_dir,
                env=child_env,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                timeout=deadline,
                check=False,
            )
    except subprocess.TimeoutExpired as exc:
        raise LocustError(f"locust did not finish within {deadline:.0f} s:\n{_tail(log)}") from exc
    finally:
        for proc in worker_procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)
    stats_path = Path(f"{csv_prefix}_stats.csv")
    if not stats_path.exists():
        raise LocustError(
            f"locust exited {done.returncode} without statistics:\n"
            f"{_tail(out_dir / f'{name}.stdout')}\n{_tail(log)}"
        )
    return LocustRun(read_stats(stats_path), csv_prefix, html, log, done.returncode)
