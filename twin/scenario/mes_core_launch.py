"""Starting mes_core as the system under test of a run, and what only the bench's own MES
allows: killing and restarting its process, cutting its database connection, serving the
live dashboards beside it.

``mestwin serve`` runs as a child process on a free port, on an SQLite file in the report
folder or the given ``--database-url`` (PostgreSQL through a TCP proxy the bench can cut),
unless ``--mes-url`` names an MES that is already running.
"""

from __future__ import annotations

import os
import secrets

from twin.scenario.context import RunContext
from twin.scenario.dashboard_process import DashboardProcess
from twin.scenario.mes_process import MesProcess
from twin.scenario.proxy import TcpProxy
from twin.scenario.sut import MesStartError, SutUnavailable, SystemUnderTest


class MesCoreLauncher:
    """The mes_core process (or external URL) of one run, and its fault hooks."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.mes: MesProcess | None = None
        self.db_proxy: TcpProxy | None = None
        self.dashboard: DashboardProcess | None = None
        self.database = ""
        # The bench's own MES gets a fresh admin password per run; an external MES is
        # reached with MESTWIN_ADMIN_PASSWORD (its demo default when unset).
        self.admin_password = (
            os.environ.get("MESTWIN_ADMIN_PASSWORD", "admin")
            if ctx.options.mes_url
            else secrets.token_urlsafe(12)
        )

    def start(self) -> str:
        """Start the MES (or take the external one); its base URL."""
        opts = self.ctx.options
        if opts.mes_url:
            self.database = "(external MES: its own database)"
            return opts.mes_url
        if opts.database_url is None:
            # A fresh embedded database per run: a report never mixes two runs.
            db = (opts.report_dir / "mes.db").resolve()
            for stale in (db, db.with_name("mes.db-wal"), db.with_name("mes.db-shm")):
                stale.unlink(missing_ok=True)
        url = opts.database_url or f"sqlite:///{(opts.report_dir / 'mes.db').resolve()}"
        if url.startswith("postgresql"):
            url = self._proxied_postgres(url)
        self.database = _redact(opts.database_url or url)
        self.mes = MesProcess(url, opts.report_dir / "mes.log", self.admin_password)
        self.mes.start()
        return self.mes.url

    def _proxied_postgres(self, url: str) -> str:
        """Route the MES's PostgreSQL connection through a proxy the runner can cut."""
        from sqlalchemy.engine import make_url

        u = make_url(url)
        self.db_proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432).start()
        return u.set(host="127.0.0.1", port=self.db_proxy.port).render_as_string(
            hide_password=False
        )

    def connect(self, url: str) -> SystemUnderTest:
        """The adapter for the MES at ``url``, once it answers."""
        from twin.scenario.sut_mes_core import MesCoreSut

        scenario = self.ctx.scenario
        sut = MesCoreSut(
            url,
            plant_start=self.ctx.plant.plant.start,
            admin_password=self.admin_password,
            passwords={p.id: p.password for p in scenario.people},
            supervisor=next((p.id for p in scenario.people if p.role == "supervisor"), None),
        )
        try:
            sut.wait_ready(90)
        except SutUnavailable as exc:
            tail = self.mes.log_tail() if self.mes else ""
            raise MesStartError(f"the MES did not come up at {url}: {exc}\n{tail}") from exc
        return sut

    def start_dashboard(self, mes_url: str) -> None:
        opts = self.ctx.options
        if opts.dashboard_port is None:
            return
        from rich.console import Console

        self.dashboard = DashboardProcess(
            mes_url,
            "admin",
            self.admin_password,
            opts.report_dir / "dashboard.log",
            report=opts.report_dir / "report.json",
            port=opts.dashboard_port,
        )
        self.dashboard.start()
        Console(stderr=True).print(f"dashboards: {self.dashboard.url} (until the run ends)")

    def stop_dashboard(self) -> None:
        if self.dashboard is not None:
            self.dashboard.stop()

    def stop(self) -> None:
        """Stop the MES child and the database proxy (after the adapter is closed)."""
        if self.mes is not None:
            self.mes.stop()
        if self.db_proxy is not None:
            self.db_proxy.stop()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without its middle
        return url.split("@")[-1]
