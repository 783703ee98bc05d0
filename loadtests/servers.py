"""Start and stop HTTP servers under test (the MES, the bare ceiling app) as uvicorn
subprocesses on free loopback ports, and wait until they answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from loadtests.runner import free_port


class ServerError(RuntimeError):
    """A server did not come up; the message quotes its log."""


@contextmanager
def uvicorn_server(
    app: str,
    *,
    env: Mapping[str, str],
    workers: int = 1,
    health_path: str = "/",
    log_path: Path,
    factory: bool = False,
    extra_args: Sequence[str] = (),
    start_timeout_s: float = 60,
    pids: list[int] | None = None,
) -> Iterator[str]:
    """Serve ``app`` (an import string) with uvicorn; yields its base URL. ``pids``, if
    given, receives the server's process id (its workers are its children)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        *(["--factory"] if factory else []),
        *extra_args,
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, url + health_path, start_timeout_s, log_path)
            if pids is not None:
                pids.append(proc.pid)
            yield url
        finally:
            stop_process(proc)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"server exited {proc.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ServerError(f"server not ready at {url} after {timeout_s:.0f} s:\n{_tail(log_path)}")


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """SIGINT (uvicorn's graceful stop, which also stops its workers), then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
