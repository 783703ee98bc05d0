"""A trainer's paced run (``mestwin run --speed 60 --dashboard``) in headless Chromium, one
run and one browser for everything a trainer and trainees do (issues 13 and 15):

- the Plant page shows the machines' live states while the run goes on (issue 13: every
  work unit stayed ``offline`` because the connector's first read was dated at the wall
  clock, after every plant event);
- the trainer opens the console with the password the run prints, pauses and resumes the
  run, and injects a process drift from the scenario language's list;
- an operator logs in, starts an operation and scans a lot, and sees a wrong lot refused
  with ``MATERIAL_NOT_ON_BOM``;
- QA logs in, reviews the drift's nonconformance and signs a scrap disposition, and sees
  the signature in the record;
- the trainer injects a breakdown and the Plant page shows the unit down within seconds;
- the trainer ends the run; the report's people section lists all of it (the drift
  caught by QA).

Screenshots of the new pages go to ``$MESTWIN_SCREENSHOT_DIR`` (``docs/images``) or to a
temporary folder. ~50 s: start-up, then the browser's steps at speed 60."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from plant_models.scenario import SCENARIOS_DIR
from twin.scenario.runner import Runner, RunOptions, RunResult

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Longest a step waits for the page (not a performance check: see the printed figures).
STEP_S = 30.0


def _training_scenario(tmp_path: Path) -> Path:
    """The bottling line for a training session: a long order on the filler (JO-A) and
    one queued behind it (JO-B) the trainee starts; the bench's operator runs the line;
    the bench's QA is slow (10 h), so the trainee signs; the trainer ends the run."""
    data = {
        "name": "training-session",
        "plant": str((SCENARIOS_DIR.parent / "bottling_line.yaml").resolve()),
        "duration": "3h",
        "seed": 15,
        "tick": "1m",
        "settle": 0,
        "erp": {
            "plant_orders": False,
            "orders": [
                {"id": "JO-A", "product": "WATER-500", "quantity": 20000},
                {"id": "JO-B", "product": "WATER-500", "quantity": 500},
            ],
        },
        "people": [
            {"id": "OP-CARLA", "role": "operator", "behaviour": {"reaction": "2m"}},
            {"id": "QA-EVA", "role": "qa", "behaviour": {"reaction": "10h"}},
        ],
        "expectations": [{"type": "events", "max_lost": 0, "max_duplicated": 0}],
    }
    path = tmp_path / "training.yaml"
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


def _text(driver: Any, selector: str) -> str:
    return str(
        driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            selector,
        )
    )


def _wait(what: Any, message: str, timeout: float = STEP_S) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = what()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the page is still rendering: retry
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s: {message} (last error: {last})")


def _type(driver: Any, selector: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = _wait(lambda: driver.find_element(By.CSS_SELECTOR, selector), selector)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(text)


def _click(driver: Any, selector: str) -> None:
    """Click in one step in the page (a live refresh may replace the element)."""
    _wait(
        lambda: driver.execute_script(
            "const e = document.querySelector(arguments[0]); if (e) { e.click(); return true; }"
            "return false;",
            selector,
        ),
        f"click {selector}",
    )


def _open(driver: Any, url: str, ready: str) -> None:
    driver.get(url)
    _wait(lambda: _text(driver, ready) or driver.find_elements("css selector", ready), ready)


def _login(driver: Any, base: str, user: str, password: str) -> None:
    _open(driver, base + "/login", "#login-user")
    _type(driver, "#login-user", user)
    _type(driver, "#login-password", password)
    _click(driver, "#login-submit")
    _wait(lambda: f"Logged in as {user}" in _text(driver, "#login-result"), f"log in as {user}")


def _answer(driver: Any, selector: str, want: str) -> str:
    return str(
        _wait(
            lambda: (text := _text(driver, selector)) and want in text and text,
            f"{selector} says {want!r} (it says {_text(driver, selector)!r})",
        )
    )


def _inject(driver: Any, kind: str, fields: dict[str, str], expect: str = "") -> None:
    _click(driver, f"#trainer-inject-type input[value='{kind}']")
    for name, value in fields.items():
        _wait(
            lambda n=name: driver.find_elements("css selector", f'[id*=\'"name":"{n}"\']'),
            f"field {name} of {kind}",
        )
        _type(driver, f'[id*=\'"name":"{name}"\']', value)
    _click(driver, "#trainer-inject")
    _answer(driver, "#trainer-answer", expect or f"{kind} queued")


def test_a_trainer_and_trainees_act_in_a_paced_run(
    browser: Any,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capfd: pytest.CaptureFixture[str],
) -> None:
    where = os.environ.get("MESTWIN_SCREENSHOT_DIR")
    shots = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    runner = Runner(
        RunOptions(
            scenario=_training_scenario(tmp_path),
            report_dir=tmp_path / "report",
            speed=60.0,
            progress=False,
            dashboard_port=0,
        )
    )
    results: list[RunResult] = []
    t0 = time.monotonic()

    def lap(what: str) -> None:
        print(f"{time.monotonic() - t0:5.1f} s  {what}")

    run = threading.Thread(target=lambda: results.append(runner.run()), daemon=True)
    run.start()
    base = _wait(lambda: run.is_alive() and runner.dashboard_url, "the dashboards' URL", 120)
    _wait(lambda: browser.get(base + "/") or True, "the dashboards answer")
    seen: list[dict[str, str]] = []

    def watch_plant() -> bool:
        states = _tile_states(browser)
        if states and (not seen or states != seen[-1]):
            seen.append(states)
        return any(s != "offline" for s in states.values())

    _wait(watch_plant, "a work unit tile leaves offline (issue 13)")
    lap("started")

    # The run printed where to log in and as whom (mestwin run --dashboard).
    assert runner.control is not None
    sheet = capfd.readouterr().err
    assert f"trainer console: {base}/trainer  password: {runner.control.trainer_password}" in sheet
    assert (
        "OP-ANNA      mestwin      operator (Anna Berg)" in sheet and "/docs  user admin" in sheet
    )

    # The trainer opens the console and injects a drift on the filler's fill weight.
    _open(browser, base + "/trainer", "#trainer-password")
    _type(browser, "#trainer-password", runner.control.trainer_password)
    _click(browser, "#trainer-unlock")
    _wait(lambda: "plant time" in _text(browser, "#trainer-status"), "the console's status")
    _click(browser, "#trainer-pause")
    _wait(lambda: "PAUSED" in _text(browser, "#trainer-status"), "the run paused")
    _click(browser, "#trainer-resume")
    _wait(lambda: ": running" in _text(browser, "#trainer-status"), "the run resumed")
    _wait(
        lambda: browser.find_elements("css selector", "#trainer-inject-type input"),
        "the inject list",
    )
    # Without a rate the scenario language refuses it, and the console says why.
    fields = {"work_unit": "BTL1-FILLER", "value": "FillWeight"}
    _inject(browser, "process_drift", fields, expect="rate: Field required")
    _type(browser, '[id*=\'"name":"rate"\']', "600")
    _click(browser, "#trainer-inject")
    _answer(browser, "#trainer-answer", "process_drift queued")
    lap("trainer injected drift")

    # An operator at the filler's terminal: start JO-B's filling, scan a lot, a wrong lot.
    # PF-24002: JO-A draws PF-24001 first, which the drift's nonconformance may hold.
    _login(browser, base, "OP-ANNA", "mestwin")
    _open(browser, base + "/terminal?wu=BTL1-FILLER", "#terminal-queue")
    _click(browser, "[data-op='JO-B/1'] button")
    _wait(lambda: "JO-B / 1" in _text(browser, "#terminal-op"), "JO-B/1 chosen")
    _click(browser, "#terminal-start")
    _answer(browser, "#terminal-answer", "Accepted")
    _type(browser, "#terminal-lot", "PF-24002")
    _type(browser, "#terminal-qty", "5")
    _click(browser, "#terminal-consume")
    _answer(browser, "#terminal-answer", "5 of lot PF-24002 consumed")
    _type(browser, "#terminal-lot", "LW-5510")
    _click(browser, "#terminal-consume")
    refused = _answer(browser, "#terminal-answer", "MATERIAL_NOT_ON_BOM")
    assert refused.startswith("Refused"), refused
    browser.save_screenshot(str(shots / "terminal.png"))
    lap("operator done")

    # QA reviews the drift's nonconformance with its evidence and signs a scrap.
    _login(browser, base, "QA-EVA", "mestwin")
    _open(browser, base + "/supervisor", "#supervisor-ncs")
    _wait(lambda: "OUT OF SPEC" in _text(browser, "#supervisor-evidence"), "the NC's evidence")
    _click(browser, "#supervisor-decision input[value='scrap']")
    _type(browser, "#supervisor-reason", "fill weight drifted above 506 g")
    _type(browser, "#supervisor-password", "mestwin")
    _click(browser, "#supervisor-sign")
    _answer(browser, "#supervisor-answer", "disposed: scrap")
    signed = _answer(browser, "#supervisor-signature", "verified")
    assert "Eva Lind" in signed and "fill weight drifted" in signed
    browser.save_screenshot(str(shots / "supervisor.png"))
    lap("QA done")

    # The trainer breaks the capper down; the Plant page shows it down within seconds.
    _open(browser, base + "/trainer", "#trainer-status")
    _wait(
        lambda: browser.find_elements("css selector", "#trainer-inject-type input"),
        "the inject list",
    )
    _inject(browser, "breakdown", {"work_unit": "BTL1-CAPPER", "duration": "30m"})
    injected = time.monotonic()
    _wait(lambda: "consume_lot" in _text(browser, "#trainer-feed"), "trainee actions in the feed")
    browser.save_screenshot(str(shots / "trainer.png"))
    _open(browser, base + "/", ".tile[data-code]")
    _wait(
        lambda: watch_plant() and _tile_states(browser).get("BTL1-CAPPER") == "down",
        "BTL1-CAPPER down on the Plant page",
        timeout=20,
    )
    down_after = time.monotonic() - injected
    print(f"breakdown injected -> tile down on the Plant page in {down_after:.1f} s")
    lap("breakdown seen")

    # The trainer ends the run; the report's people section holds the session.
    _open(browser, base + "/trainer", "#trainer-status")
    _click(browser, "#trainer-stop")
    _answer(browser, "#trainer-answer", "stop queued")
    run.join(120)
    assert results, "the run did not end after the trainer's stop"
    lap("run ended")
    report = results[0].report
    assert results[0].exit_code == 0, [e.detail for e in report.expectations if not e.passed]
    people = report.people
    assert people is not None
    done = [(a.person, a.action, a.accepted, a.rule) for a in people.actions]
    assert ("OP-ANNA", "start_operation", True, None) in done
    assert ("OP-ANNA", "consume_lot", True, None) in done
    assert ("OP-ANNA", "consume_lot", False, "MATERIAL_NOT_ON_BOM") in done
    assert ("QA-EVA", "dispose_scrap", True, None) in done
    drift = next(d for d in people.deviations if d.type == "process_drift")
    assert drift.injected_by == "trainer" and drift.verdict == "caught", drift
    assert drift.caught_by == "QA-EVA" and drift.reaction_s is not None
    assert [f.target for f in people.faults_injected_by_trainer] == ["BTL1-CAPPER"]
    assert [c.command for c in people.commands] == ["pause", "resume", "stop"]
    anna = next(t for t in people.trainees if t.person == "OP-ANNA")
    assert anna.refusals == {"MATERIAL_NOT_ON_BOM": 1}
    changed = {
        code
        for before, after in itertools.pairwise(seen)
        for code in after
        if code in before and after[code] != before[code]
    }
    assert "BTL1-CAPPER" in changed, f"no tile changed state during the run: {seen[-3:]}"
