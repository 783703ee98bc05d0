"""``mestwin run --dashboard``: the live dashboards serve beside a run and stop with it."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import httpx
from test_scenario_runs import shortened

from twin.scenario.mes_core_launch import MesCoreRun
from twin.scenario.runner import Runner, RunOptions


def test_dashboards_serve_beside_a_run_and_stop_with_it(tmp_path: Path) -> None:
    path = shortened(tmp_path, "clean_bottling_day", "1h", drain="1h")
    runner = Runner(
        RunOptions(
            scenario=path,
            report_dir=tmp_path / "report",
            order_scale=0.1,
            progress=False,
            dashboard_port=0,
            # All interfaces, as for trainees at other machines: reached by the
            # machine's name, the URL the login sheet prints.
            dashboard_host="0.0.0.0",
        )
    )
    answered: list[int] = []

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not answered:
            url = runner.dashboard_url
            if url is not None:
                with contextlib.suppress(httpx.HTTPError):
                    answered.append(httpx.get(url + "/", timeout=2).status_code)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result = runner.run()
    watcher.join(5)
    assert result.exit_code == 0
    assert answered == [200], "the dashboards never answered while the run went on"
    witness = runner.ctx.witness
    assert witness is not None and isinstance(witness.sut, MesCoreRun)
    dashboard = witness.sut.launcher.dashboard
    assert dashboard is not None and dashboard.proc is not None
    assert dashboard.proc.poll() is not None, "the dashboards outlived the run"
    log = (tmp_path / "report" / "dashboard.log").read_text(encoding="utf-8")
    assert f"dashboards at {runner.dashboard_url}" in log
