"""Locust's master/worker mode: a master with two local workers runs and aggregates."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadtests.runner import run_locust

HERE = Path(__file__).parent


class _Target(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.by_pid: Counter[str] = Counter()
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Target

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.by_pid[self.headers.get("X-Locust-Pid", "?")] += 1
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def target() -> Iterator[_Target]:
    server = _Target()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_locust_master_with_two_workers_runs_and_aggregates(
    target: _Target, tmp_path: Path
) -> None:
    users = 4
    run = run_locust(
        host=f"http://127.0.0.1:{target.server_address[1]}",
        users=users,
        spawn_rate=users,
        run_time_s=3,
        out_dir=tmp_path,
        locustfile=HERE / "pid_locustfile.py",
        workers=2,
        name="distributed",
    )
    served = sum(target.by_pid.values())
    reported = run.stats["Aggregated"].requests
    # Both workers generated load (two processes, neither of them the master).
    assert len(target.by_pid) == 2, target.by_pid
    assert all(count > 0 for count in target.by_pid.values())
    # The master's report is the sum over its workers: every request it counts reached the
    # target; at most the requests in flight when the run stopped were never reported.
    assert reported > 0
    assert reported <= served <= reported + users
    assert run.stats["probe"].failures == 0
    assert run.html.exists()
