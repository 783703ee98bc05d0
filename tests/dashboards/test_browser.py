"""The dashboards in a real browser (headless Chromium) against a real MES.

Each page loads without a browser console error and shows what the MES knows; pages update
when the MES changes, without a reload; a MES that stops answering is announced on the
page, which recovers by itself when the MES is back. Screenshots go to
``$MESTWIN_SCREENSHOT_DIR`` (``docs/images`` when regenerating the README's pictures) or
to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import plantdata
import pytest
from conftest import Mes
from selenium.common.exceptions import WebDriverException

from dashboards.app import DashboardServer, context_of
from dashboards.pages.line import window_bounds
from mes_core.client import MesClient
from mes_core.schemas.plant_events import EquipmentState

pytestmark = [pytest.mark.browser, pytest.mark.slow]

T = TypeVar("T")

#: Longest a wait for a live change lasts before the test gives up. Not a performance
#: check (the product's two seconds are measured and printed, never asserted): a page that
#: does not update at all fails; a loaded CI machine does not.
LIVE_TIMEOUT_S = 20.0


def wait_for(what: Callable[[], T | None], timeout: float = 10.0, message: str = "") -> T:
    """Poll ``what`` until it returns something truthy (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = what()
            if value:
                return value
        except (WebDriverException, IndexError, AttributeError, ValueError) as exc:
            last = exc  # the page is still rendering (element gone or not there yet): retry
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s: {message} (last error: {last})")


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("MESTWIN_SCREENSHOT_DIR")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_page(driver: Any, dashboard: DashboardServer, path: str) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(dashboard.url + path)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def text_of(driver: Any, selector: str) -> str:
    """Visible text of the first match, read in one step in the page (a live refresh may
    replace the element between a lookup and a read)."""
    text = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", selector
    )
    return str(text)


def attr(driver: Any, selector: str, name: str) -> str | None:
    """An attribute of the first match, read in one step in the page."""
    value = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? e.getAttribute(arguments[1]) : null;",
        selector,
        name,
    )
    return None if value is None else str(value)


def mes_good_on(url: str, work_unit: str) -> float:
    """The good count the MES holds for the running operation on ``work_unit``."""
    with MesClient(url).login("admin", plantdata.ADMIN_PASSWORD) as admin:
        for order in admin.list_job_orders(state="running"):
            for op in order.operations:
                if op.state == "running" and op.work_unit == work_unit:
                    return op.good
    raise AssertionError(f"nothing runs on {work_unit}")


def test_plant_page_shows_every_work_unit_with_the_mes_counts(
    browser: Any, dashboard: DashboardServer, mes: Mes, shots: Path
) -> None:
    open_page(browser, dashboard, "/")
    wait_for(lambda: len(css(browser, ".tile")) == 5, message="5 work unit tiles")
    filler = '[data-code="BTL1-FILLER"]'
    expected = mes_good_on(mes.url, "BTL1-FILLER")
    assert float((attr(browser, filler, "data-good") or "").replace(",", "")) == expected
    assert "JO-RUN" in text_of(browser, filler)
    caser = '[data-code="PCK1-CASER"]'
    assert attr(browser, caser, "data-state") == "down"
    assert "jam" in text_of(browser, caser)
    assert "alarm" in (attr(browser, caser, "class") or "")
    assert css(browser, "#plant-alarm-chip"), "an active stop stands out in the summary"
    browser.save_screenshot(str(shots / "plant.png"))
    assert console_errors(browser) == []


def test_plant_page_updates_within_seconds_when_the_mes_changes(
    browser: Any, dashboard: DashboardServer, mes: Mes
) -> None:
    """A plant event posted to the MES shows on the open page without a reload."""
    open_page(browser, dashboard, "/")
    wait_for(lambda: css(browser, '[data-code="BTL1-FILLER"]'), message="filler tile")
    before = mes_good_on(mes.url, "BTL1-FILLER")
    marker = browser.execute_script("window.__not_reloaded = true; return true;")
    assert marker
    now = datetime.now(UTC)
    with MesClient(mes.url, api_key=plantdata.api_key(mes.url)) as connector:
        connector.ingest(
            [
                plantdata.count("BTL1-FILLER", 7, 0, now, "JO-RUN"),
                plantdata.state("BTL1-LABELLER", EquipmentState.BLOCKED, now, "outfeed full"),
            ]
        )
    posted = time.monotonic()
    wait_for(
        lambda: attr(browser, '[data-code="BTL1-FILLER"]', "data-good") == f"{int(before + 7):,}",
        timeout=LIVE_TIMEOUT_S,
        message="filler count +7",
    )
    wait_for(
        lambda: attr(browser, '[data-code="BTL1-LABELLER"]', "data-state") == "blocked",
        timeout=LIVE_TIMEOUT_S,
        message="labeller blocked",
    )
    print(f"plant page showed the change {time.monotonic() - posted:.2f} s after posting")
    assert browser.execute_script("return window.__not_reloaded === true;"), "page reloaded"
    assert console_errors(browser) == []


def test_line_page_shows_the_mes_kpis_states_and_throughput(
    browser: Any, dashboard: DashboardServer, mes: Mes, shots: Path
) -> None:
    open_page(browser, dashboard, "/line?line=BTL1&window=1h")
    wait_for(lambda: text_of(browser, "#kpi-good"), message="KPI cards")
    start, end = window_bounds("1h", datetime.now(UTC))
    with MesClient(mes.url).login("admin", plantdata.ADMIN_PASSWORD) as admin:
        report = admin.line_kpis("BTL1", start, end)
    # Counts only change when the plant reports, so the page and this read agree.
    assert text_of(browser, "#kpi-good") == f"{int(report.good_quantity):,}"
    wait_for(
        lambda: browser.execute_script(
            "const g = document.querySelector('#line-gantt .js-plotly-plot');"
            "return g && g.data.filter(t => t.x.length).map(t => t.name);"
        ),
        message="Gantt traces with intervals",
    )
    gantt_rows = browser.execute_script(
        "return document.querySelector('#line-gantt .js-plotly-plot').layout.yaxis.categoryarray;"
    )
    assert sorted(gantt_rows) == ["BTL1-CAPPER", "BTL1-FILLER", "BTL1-LABELLER"]
    assert "Loss waterfall" in text_of(browser, "#line-waterfall")
    # ISO 22400-2 for a line: the page says where its figures come from.
    assert f"left the line (at {', '.join(report.output_work_units)})" in text_of(
        browser, "#line-notes"
    )
    browser.save_screenshot(str(shots / "line.png"))
    assert console_errors(browser) == []


def test_quality_page_marks_violations_lists_holds_and_extends_charts(
    browser: Any, dashboard: DashboardServer, mes: Mes, shots: Path
) -> None:
    open_page(browser, dashboard, "/quality")
    wait_for(lambda: "JO-QA" in text_of(browser, "#holds-table"), message="holds")
    holds = text_of(browser, "#holds-table")
    assert "CARTON-0001" in holds and "out of specification" in holds
    assert "NC-" in text_of(browser, "#nc-table")
    wait_for(lambda: "case_weight" in text_of(browser, "#quality-charts"), message="SPC chart")
    assert "23 results" in text_of(browser, "#quality-charts")
    marked = browser.execute_script(
        "const g = document.querySelector('#quality-charts .js-plotly-plot');"
        "return g.data.filter(t => t.name.startsWith('Rule') || t.name === 'out of spec')"
        ".map(t => [t.name, t.y.length]);"
    )
    assert ["out of spec", 1] in marked and ["Rule 1: beyond 3σ", 1] in marked
    browser.save_screenshot(str(shots / "quality.png"))
    with MesClient(mes.url).login("admin", plantdata.ADMIN_PASSWORD) as admin:
        admin.record_measurement("JO-RUN", 1, "fill_volume", 1000.5)
        wait_for(
            lambda: "fill_volume" in text_of(browser, "#quality-charts"),
            timeout=LIVE_TIMEOUT_S,
            message="a new characteristic's chart appears",
        )
        browser.execute_script("window.__not_reloaded = true;")
        admin.record_measurement("JO-RUN", 1, "fill_volume", 999.5)
    posted = time.monotonic()
    wait_for(
        lambda: (
            "fill_volume (R-JUICE-1L op 1) (ml): 2 results" in text_of(browser, "#quality-charts")
        ),
        timeout=LIVE_TIMEOUT_S,
        message="the chart extended by the new result",
    )
    print(f"quality page showed the result {time.monotonic() - posted:.2f} s after recording")
    assert browser.execute_script("return window.__not_reloaded === true;")
    assert console_errors(browser) == []


def test_job_orders_page_lists_progress_and_one_orders_detail(
    browser: Any, dashboard: DashboardServer, shots: Path
) -> None:
    open_page(browser, dashboard, "/orders")
    wait_for(lambda: "JO-RUN" in text_of(browser, "#orders-list"), message="order list")
    listing = text_of(browser, "#orders-list")
    assert "48 / 50" in listing  # JO-DONE: good of its last operation against the quantity
    assert "late by" in listing  # JO-LATE is past its due date
    browser.save_screenshot(str(shots / "orders.png"))
    open_page(browser, dashboard, "/orders?order=JO-DONE")
    wait_for(lambda: "FG-0001" in text_of(browser, "#order-detail"), message="order detail")
    detail = text_of(browser, "#order-detail")
    assert "PRE-0001" in detail and "CAP-0001" in detail and "alice" in detail
    assert console_errors(browser) == []


def test_genealogy_page_traces_a_lot_backward_and_forward(
    browser: Any, dashboard: DashboardServer, shots: Path
) -> None:
    open_page(browser, dashboard, "/genealogy?lot=FG-0001")
    wait_for(lambda: "2 related lots" in text_of(browser, "#genealogy-summary"), message="trace")
    table = text_of(browser, "#genealogy-table")
    assert "PRE-0001" in table and "CAP-0001" in table and "JO-DONE" in table
    browser.save_screenshot(str(shots / "genealogy.png"))
    assert console_errors(browser) == []


def sample_report() -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "scenario": {
            "name": "bottling-clean-day",
            "file": "bottling_clean_day.yaml",
            "description": "A clean day on the bottling line.",
            "plant": "bottling",
            "duration_s": 3600,
            "speed": "max",
        },
        "seed": 7,
        "versions": {"mestwin": "0.1.0"},
        "system_under_test": "mes_core",
        "database": "sqlite",
        "started_at": "2026-01-05T06:00:00+00:00",
        "wall_time_s": 42.0,
        "sim_time_s": 3600.0,
        "passed": False,
        "expectations": [
            {
                "name": "all orders complete",
                "type": "orders_complete",
                "passed": True,
                "detail": "3 of 3",
            },
            {"name": "no lost events", "type": "events", "passed": False, "detail": "2 lost"},
        ],
        "reconciliation": {
            "exact": False,
            "rows": [
                {
                    "entity": "work_unit",
                    "id": "BTL1-FILLER",
                    "quantity": "good",
                    "twin": 100,
                    "mes": 98,
                    "difference": -2,
                    "tolerance": 0,
                    "matches": False,
                }
            ],
            "mismatches": ["BTL1-FILLER good: twin 100, MES 98"],
        },
        "kpis": [
            {
                "scope": "line",
                "id": "BTL1",
                "source": "mes",
                "availability": 0.9,
                "performance": 0.8,
                "quality": 0.99,
                "oee": 0.7128,
            }
        ],
        "events": {"sent": 1000, "ingested": 998, "lost": 2, "duplicated": 0},
        "deviations": [
            {
                "name": "wrong lot",
                "type": "wrong_lot",
                "at": 600,
                "target": "JO-1",
                "outcome": "refused",
                "rule": "MATERIAL_NOT_ON_BOM",
            }
        ],
        "faults": [{"type": "opcua_drop", "at": 900, "until": 960}],
        "orders": [
            {
                "id": "JO-1",
                "product": "JUICE-1L",
                "quantity": 100,
                "good": 98,
                "scrap": 2,
                "state": "completed",
            }
        ],
        "states": [
            {"work_unit": "BTL1-FILLER", "state": "running", "start": 0, "end": 3000},
            {"work_unit": "BTL1-FILLER", "state": "down", "start": 3000, "end": 3600},
        ],
        "api_latency": {"count": 120, "p50_ms": 4.0, "p95_ms": 9.0, "p99_ms": 15.0, "max_ms": 30.0},
        "notes": [],
    }


def test_report_page_shows_a_report_as_soon_as_the_run_writes_it(
    browser: Any, dashboard: DashboardServer, shots: Path
) -> None:
    """The file given at start-up does not exist yet; when written, the page shows it."""
    path = context_of(dashboard.app).reports[0]
    path.unlink(missing_ok=True)
    open_page(browser, dashboard, "/report")
    wait_for(lambda: "does not exist yet" in text_of(browser, "#report-body"), message="waiting")
    path.write_text(json.dumps(sample_report()), encoding="utf-8")
    wait_for(
        lambda: "FAILED" in text_of(browser, "#report-summary"),
        timeout=LIVE_TIMEOUT_S,
        message="report shown",
    )
    assert "no lost events" in text_of(browser, "#report-expectations")
    assert "BTL1-FILLER good: twin 100, MES 98" in text_of(browser, "#report-reconciliation")
    browser.save_screenshot(str(shots / "report-sample.png"))
    path.write_text('{"scenario": 1}', encoding="utf-8")
    wait_for(
        lambda: "not a scenario report" in text_of(browser, "#report-banner"),
        timeout=LIVE_TIMEOUT_S,
        message="clear error for a broken report",
    )
    assert console_errors(browser) == []


def test_page_says_when_the_mes_is_unreachable_and_recovers_by_itself(
    browser: Any, dashboard: DashboardServer, mes: Mes
) -> None:
    open_page(browser, dashboard, "/")
    wait_for(lambda: css(browser, ".tile"), message="tiles")
    mes.stop()
    try:
        wait_for(
            lambda: "MES unreachable" in text_of(browser, "#plant-banner"),
            timeout=15,
            message="banner while the MES is down",
        )
        assert css(browser, ".tile"), "the last known board stays on screen"
    finally:
        mes.start()
    wait_for(
        lambda: "hidden" in (attr(browser, "#plant-banner", "class") or ""),
        timeout=15,
        message="banner gone once the MES answers again",
    )
    assert [e for e in console_errors(browser) if "_dash-update-component" in e["message"]] == []


def test_no_session_is_shared_between_browsers(dashboard: DashboardServer) -> None:
    """Every browser session has its own client: two cookie jars, two sessions."""
    import httpx

    registry = context_of(dashboard.app).sessions
    before = len(registry)
    body = {
        "output": "whoami.children",
        "outputs": {"id": "whoami", "property": "children"},
        "inputs": [{"id": "url", "property": "pathname", "value": "/"}],
        "changedPropIds": ["url.pathname"],
    }
    for _ in range(2):
        with httpx.Client(base_url=dashboard.url) as jar:
            answer = jar.post("/_dash-update-component", json=body)
            assert answer.status_code == 200, answer.text
            assert "admin" in answer.text
    assert len(registry) == before + 2


def test_unknown_job_order_or_lot_is_said_on_the_page(
    browser: Any, dashboard: DashboardServer
) -> None:
    open_page(browser, dashboard, "/orders?order=JO-NOPE")
    wait_for(lambda: "JO-NOPE" in text_of(browser, "#orders-banner"), message="not found")
    open_page(browser, dashboard, "/genealogy?lot=LOT-NOPE")
    wait_for(lambda: "LOT-NOPE" in text_of(browser, "#genealogy-banner"), message="not found")
    open_page(browser, dashboard, "/no-such-page")
    wait_for(lambda: "There is no page /no-such-page" in text_of(browser, "#page"), message="404")
    assert console_errors(browser) == []


def test_login_page_switches_the_browsers_mes_user(
    browser: Any, dashboard: DashboardServer
) -> None:
    """The session's client acts as whoever logged in (operator pages will build on it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, dashboard, "/login")
    wait_for(lambda: css(browser, "#login-user"), message="login form")

    def log_in(user: str, password: str) -> None:
        for field, value in (("login-user", user), ("login-password", password)):
            box = browser.find_element(By.ID, field)
            # Select what is there and type over it (clear() bypasses React's state).
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(value)
        browser.find_element(By.ID, "login-submit").click()

    log_in("alice", "not-her-password")
    wait_for(lambda: "Refused" in text_of(browser, "#login-result"), message="refusal")
    log_in("alice", "alice")
    wait_for(
        lambda: "Logged in as" in text_of(browser, "#login-result"),
        message=f"login ({text_of(browser, '#login-result')})",
    )
    assert "alice (operator)" in text_of(browser, "#whoami")
    browser.find_element(By.ID, "logout-submit").click()
    wait_for(lambda: "Logged out" in text_of(browser, "#login-result"), message="logout")
    open_page(browser, dashboard, "/")
    wait_for(lambda: "admin" in text_of(browser, "#whoami"), message="back to the default user")
    assert console_errors(browser) == []


def test_report_page_opens_an_uploaded_report(
    browser: Any, dashboard: DashboardServer, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    report = sample_report()
    report["scenario"]["name"] = "uploaded-run"
    report["passed"] = True
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    open_page(browser, dashboard, "/report")
    wait_for(lambda: css(browser, "#report-upload input[type=file]"), message="upload box")
    browser.find_element(By.CSS_SELECTOR, "#report-upload input[type=file]").send_keys(str(path))
    wait_for(
        lambda: "uploaded-run" in text_of(browser, "#report-summary"),
        timeout=LIVE_TIMEOUT_S,
        message="uploaded report shown",
    )
    assert "PASSED" in text_of(browser, "#report-summary")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    browser.find_element(By.CSS_SELECTOR, "#report-upload input[type=file]").send_keys(str(broken))
    wait_for(
        lambda: "broken.json: not JSON" in text_of(browser, "#report-banner"),
        timeout=LIVE_TIMEOUT_S,
        message=f"a broken upload is refused ({text_of(browser, '#report-banner')!r})",
    )
    assert console_errors(browser) == []
