"""Fixtures of the dashboard tests: a real MES (SQLite, in a thread) filled through its
client, the dashboards served from a thread, and headless Chromium driving them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import plantdata
import pytest
from support import require

from dashboards.app import DashboardServer, serve
from dashboards.session import Credentials
from mes_core.demo import ServerThread, free_port
from mes_core.persistence.migrate import upgrade
from mes_core.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Mes:
    """A MES API on one SQLite database that a test may stop and start on the same port."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ServerThread | None = None

    def start(self) -> None:
        settings = Settings(database_url=self.database_url, admin_password=plantdata.ADMIN_PASSWORD)
        self._server = ServerThread(settings, port=self.port)
        self._server.__enter__()

    def stop(self) -> None:
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None


@pytest.fixture(scope="session")
def mes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mes]:
    """A running MES with the test plant loaded and driven (see ``plantdata.fill``)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dash-mes') / 'mes.db'}"
    upgrade(url)
    server = Mes(url)
    server.start()
    try:
        plantdata.fill(server.url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dashboard(mes: Mes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    reports = [tmp_path_factory.mktemp("reports") / "report.json"]
    handle = serve(
        mes.url,
        0,
        credentials=Credentials("admin", plantdata.ADMIN_PASSWORD),
        reports=reports,
        block=False,
    )
    try:
        yield handle
    finally:
        handle.stop()


def chromium_available() -> bool:
    return (
        Path(CHROMIUM).exists()
        and Path(CHROMEDRIVER).exists()
        and shutil.which(CHROMIUM) is not None
    )


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless Chromium (Debian's package) through its chromedriver; console logs on."""
    require(chromium_available(), "Chromium and chromedriver (/usr/bin)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        # WebGL (scattergl traces) in software, without the deprecation warning.
        "--enable-unsafe-swiftshader",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
