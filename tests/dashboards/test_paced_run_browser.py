"""A trainer's paced run (``mestwin run --speed 60 --dashboard``) seen in headless Chromium:
the Plant page shows the machines' live states while the run goes on (issue 13: every
work unit stayed ``offline`` because the connector's first read was dated at the wall
clock, after every plant event). ~45 s: 25 simulated minutes at speed 60, plus start-up."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from plant_models.scenario import SCENARIOS_DIR
from twin.scenario.runner import Runner, RunOptions, RunResult

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _paced_scenario(tmp_path: Path) -> Path:
    """The clean bottling day, 25 simulated minutes (no expectation of a full day)."""
    data = yaml.safe_load((SCENARIOS_DIR / "clean_bottling_day.yaml").read_text())
    data["plant"] = str((SCENARIOS_DIR.parent / f"{data['plant']}.yaml").resolve())
    data.update(duration="25m", tick="1m")
    data["expectations"] = [{"type": "events", "max_lost": 0, "max_duplicated": 0}]
    path = tmp_path / "paced.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _tile_states(driver: Any) -> dict[str, str]:
    states = driver.execute_script(
        "const out = {};"
        "document.querySelectorAll('.tile[data-code]').forEach("
        "  t => { out[t.getAttribute('data-code')] = t.getAttribute('data-state'); });"
        "return out;"
    )
    return {str(k): str(v) for k, v in (states or {}).items()}


def test_a_paced_run_shows_live_work_unit_states_on_the_plant_page(
    browser: Any, tmp_path: Path
) -> None:
    runner = Runner(
        RunOptions(
            scenario=_paced_scenario(tmp_path),
            report_dir=tmp_path / "report",
            speed=60.0,
            order_scale=0.1,
            progress=False,
            dashboard_port=0,
        )
    )
    results: list[RunResult] = []
    run = threading.Thread(target=lambda: results.append(runner.run()), daemon=True)
    run.start()
    deadline = time.monotonic() + 120
    opened = False
    seen: list[dict[str, str]] = []
    while run.is_alive() and time.monotonic() < deadline:
        dashboard_url = runner.dashboard_url
        if not opened and dashboard_url is not None:
            try:
                browser.get(dashboard_url + "/")
                opened = True
            except Exception:  # noqa: BLE001 - the dashboards are still starting: retry
                time.sleep(0.5)
                continue
        if opened:
            states = _tile_states(browser)
            if states and (not seen or states != seen[-1]):
                seen.append(states)
        time.sleep(0.2)
    run.join(60)
    assert results and results[0].exit_code == 0, "the paced run failed"
    assert seen, "the Plant page never showed a work unit tile during the run"
    live = [s for s in seen if any(state != "offline" for state in s.values())]
    assert live, f"every work unit stayed offline during the run: {seen[-1]}"
    changed = {
        code
        for before, after in itertools.pairwise(seen)
        for code in after
        if code in before and after[code] != before[code]
    }
    assert changed, f"no tile changed state during the run (saw {len(seen)} boards)"
    print(f"{len(seen)} distinct boards; tiles that changed state: {sorted(changed)}")
