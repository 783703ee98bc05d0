"""The ``mes_core`` system-under-test adapter as a plug-in: starting the bench's own MES
for a run, and what only it allows: killing and restarting its process, cutting its
database connection, serving the live dashboards beside it, taking the bench's connector.

``mestwin serve`` runs as a child process on a free port, on an SQLite file in the report
folder or the given ``--database-url`` (PostgreSQL through a TCP proxy the bench can cut),
unless ``--mes-url`` names an MES that is already running. The REST side of the adapter is
:class:`~twin.scenario.sut_mes_core.MesCoreSut`.

Settings (``system_under_test: {adapter: mes_core, ...}``): ``orders``: ``rest`` (default)
or ``b2mml`` (job orders in and actuals out as B2MML documents only); ``spc_limits``: the
MES's SPC configuration of characteristics of the plant's routings, each
``{routing, characteristic, centre, sigma}`` (control limits from process validation: the
run rules apply from the first result) or ``{routing, characteristic, baseline_n}`` (limits
estimated from the first N in-control results; mes_core's default is 20).

With ``link: opcua-external`` mes_core collects for itself: the adapter starts its own
``mestwin connect`` against the twin's endpoint, as the MES's site would run it, and the
bench learns it caught up from the MES's plant counts (``caught_up``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from mes_core.client import MesClientError
from mes_core.client.local import stop_process_group
from plant_models.schema import PlantModel
from twin.scenario.dashboard_process import DashboardProcess
from twin.scenario.mes_process import MesProcess, mestwin_command
from twin.scenario.proxy import TcpProxy
from twin.scenario.sut import (
    MesStartError,
    RunControlAccess,
    SutEnvironment,
    SutSettingsError,
    SutUnavailable,
    UnitProgress,
)
from twin.scenario.sut_mes_core import ORDER_CHANNELS, MesCoreSut
from twin.scenario.sut_mes_core_base import DEFAULT_PASSWORD, SpcLimits

SETTINGS = ("orders", "spc_limits")


class MesCoreLauncher:
    """The mes_core process (or external URL) of one run, its database proxy and
    dashboards."""

    def __init__(self, env: SutEnvironment) -> None:
        self.env = env
        self.mes: MesProcess | None = None
        self.db_proxy: TcpProxy | None = None
        self.dashboard: DashboardProcess | None = None
        self.collector: subprocess.Popen[bytes] | None = None
        self.database = ""
        # The bench's own MES gets a fresh admin password per run; an external MES is
        # reached with MESTWIN_ADMIN_PASSWORD (its demo default when unset).
        self.admin_password = (
            os.environ.get("MESTWIN_ADMIN_PASSWORD", "admin")
            if env.mes_url
            else secrets.token_urlsafe(12)
        )

    def start(self) -> str:
        """Start the MES (or take the external one); its base URL."""
        env = self.env
        if env.mes_url:
            self.database = "(external MES: its own database)"
            return env.mes_url
        if env.database_url is None:
            # A fresh embedded database per run: a report never mixes two runs.
            db = (env.report_dir / "mes.db").resolve()
            for stale in (db, db.with_name("mes.db-wal"), db.with_name("mes.db-shm")):
                stale.unlink(missing_ok=True)
        url = env.database_url or f"sqlite:///{(env.report_dir / 'mes.db').resolve()}"
        if url.startswith("postgresql"):
            url = self._proxied_postgres(url)
        self.database = _redact(env.database_url or url)
        self.mes = MesProcess(url, env.report_dir / "mes.log", self.admin_password)
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

    def start_collector(self, url: str, api_key: str, endpoint: str) -> None:
        """mes_core's own OPC UA collector (``link: opcua-external``): ``mestwin connect``
        subscribed to ``endpoint``, posting to the MES at ``url``."""
        spool = self.env.report_dir / "collector-spool.sqlite"
        for stale in (spool, *(spool.with_name(spool.name + x) for x in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)
        cmd = [
            *mestwin_command(),
            "connect",
            "--opcua",
            endpoint,
            "--mes",
            url,
            "--spool",
            str(spool),
            "--no-dispatch",
        ]
        with (self.env.report_dir / "collector.log").open("ab") as out:
            self.collector = subprocess.Popen(
                cmd,
                env=dict(os.environ, MESTWIN_API_KEY=api_key),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        """Stop the collector, the dashboards, the MES child and the database proxy."""
        stop_process_group(self.collector, 15)
        if self.dashboard is not None:
            self.dashboard.stop()
        if self.mes is not None:
            self.mes.stop()
        if self.db_proxy is not None:
            self.db_proxy.stop()


class MesCoreRun(MesCoreSut):
    """mes_core as a run's system under test: the REST adapter plus the process-level
    capabilities (``ProcessControl``, ``DatabaseLink``, ``Dashboards``,
    ``ConnectorTarget``) and ``CatchUp`` for its own collector."""

    def __init__(
        self,
        launcher: MesCoreLauncher,
        url: str,
        *,
        orders: str,
        spc_limits: tuple[SpcLimits, ...] = (),
    ) -> None:
        env = launcher.env
        super().__init__(
            url,
            plant_start=env.plant.plant.start,
            admin_password=launcher.admin_password,
            passwords={p.id: p.password for p in env.people},
            supervisor=next((p.id for p in env.people if p.role == "supervisor"), None),
            orders=orders,
            spc_limits=spc_limits,
        )
        self.launcher = launcher

    def load_master_data(self, plant: PlantModel) -> None:
        """The plant's master data; then, with ``link: opcua-external``, the MES's own
        collector (it binds the twin's work units to the MES's, which must exist)."""
        super().load_master_data(plant)
        env = self.launcher.env
        if env.link == "opcua-external" and env.opcua_endpoint and not self.launcher.collector:
            _url, key = self.connector_target()
            self.launcher.start_collector(self.url, key, env.opcua_endpoint)

    @property
    def database(self) -> str:
        """The database the MES runs on (password removed)."""
        return self.launcher.database

    def kill_process(self) -> str | None:
        if self.launcher.mes is None:
            return "the MES is external (--mes-url); the bench cannot kill it"
        self.launcher.mes.kill()
        return None

    def restart_process(self) -> None:
        if self.launcher.mes is not None:
            self.launcher.mes.start()

    def cut_database(self) -> str | None:
        if self.launcher.db_proxy is None:
            return (
                "the MES runs on embedded SQLite (a file in its own process, no network "
                "path to cut); use --database-url postgresql+psycopg://... to cut the "
                "database connection"
            )
        self.launcher.db_proxy.cut()
        return None

    def restore_database(self) -> None:
        if self.launcher.db_proxy is not None:
            self.launcher.db_proxy.restore()

    def connector_target(self) -> tuple[str, str]:
        from twin.scenario.opcua_link import collector_api_key

        return self.url, collector_api_key(self.url, self.launcher.admin_password)

    def caught_up(self, until: float, expected: dict[str, UnitProgress]) -> bool:
        """``CatchUp``: each work unit's plant counts (the same KPI quantities ``records``
        reads) up to a second after ``until``, so a count stamped at ``until`` is in."""
        admin = self._admin_client()
        start = self.plant_start
        end = start + timedelta(seconds=until + 1.0)
        for code, want in sorted(expected.items()):
            if want.good == 0 and want.scrap == 0:
                continue
            try:
                k = self._timed(admin.work_unit_kpis, code, start, end, "plant")
            except MesClientError:
                return False
            if k.good_quantity < want.good or k.scrap_quantity < want.scrap:
                return False
        return True

    def start_dashboard(
        self, port: int, control: RunControlAccess | None = None, host: str = "127.0.0.1"
    ) -> str:
        from rich.console import Console

        env = self.launcher.env
        self.launcher.dashboard = DashboardProcess(
            self.url,
            "admin",
            self.launcher.admin_password,
            env.report_dir / "dashboard.log",
            report=env.report_dir / "report.json",
            port=port,
            control=control,
            host=host,
        )
        self.launcher.dashboard.start()
        url = self.launcher.dashboard.url
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            "\n".join(self.login_sheet(url, control)), markup=False
        )
        return url

    def login_sheet(self, url: str, control: RunControlAccess | None) -> list[str]:
        """Where to log in beside a run, and as whom: the trainer, each person of the
        plant (their MES password), the MES's admin and its API documentation."""
        lines = [f"dashboards: {url} (until the run ends; they open as admin, read-only)"]
        if control is not None:
            lines.append(f"  trainer console: {url}/trainer  password: {control.trainer_password}")
        lines.append(f"  people log in at {url}/login, then {url}/terminal or {url}/supervisor:")
        for op in self.launcher.env.plant.operators:
            password = self.passwords.get(op.id, DEFAULT_PASSWORD)
            roles = ", ".join(op.roles)
            lines.append(f"    {op.id:<12} {password:<12} {roles} ({op.name})")
        # The run's own MES has a password made for this run; an external MES's admin
        # password is the site's, never printed.
        admin = (
            "the MESTWIN_ADMIN_PASSWORD you gave"
            if self.launcher.env.mes_url
            else self.launcher.admin_password
        )
        lines.append(f"  MES API: {self.url}/docs  user admin  password {admin}")
        return lines

    def stop_dashboard(self) -> None:
        if self.launcher.dashboard is not None:
            self.launcher.dashboard.stop()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.launcher.stop()


def open_mes_core(settings: dict[str, Any], env: SutEnvironment) -> MesCoreRun:
    """The ``mes_core`` adapter factory (entry point ``mestwin.sut_adapters: mes_core``):
    start mestwin serve (or reach ``--mes-url``) and wait until it answers."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise SutSettingsError(
            unknown[0],
            f"mes_core takes no setting {unknown[0]!r} (it takes: {', '.join(SETTINGS)})",
        )
    orders = settings.get("orders", "rest")
    if orders not in ORDER_CHANNELS:
        raise SutSettingsError("orders", f"orders must be one of {', '.join(ORDER_CHANNELS)}")
    spc = _spc_limits(settings.get("spc_limits", []), env.plant)
    launcher = MesCoreLauncher(env)
    try:
        url = launcher.start()
        sut = MesCoreRun(launcher, url, orders=str(orders), spc_limits=spc)
        try:
            sut.wait_ready(90)
        except SutUnavailable as exc:
            tail = launcher.mes.log_tail() if launcher.mes else ""
            raise MesStartError(f"the MES did not come up at {url}: {exc}\n{tail}") from exc
    except BaseException:
        launcher.stop()
        raise
    return sut


def _spc_limits(value: Any, plant: PlantModel) -> tuple[SpcLimits, ...]:
    """The ``spc_limits`` setting, each naming a characteristic of a routing of ``plant``."""
    if not isinstance(value, list):
        raise SutSettingsError("spc_limits", "spc_limits must be a list")
    try:
        limits = tuple(SpcLimits.model_validate(item) for item in value)
    except ValidationError as exc:
        raise SutSettingsError("spc_limits", f"spc_limits: {exc.errors()[0]['msg']}") from exc
    for item in limits:
        product = next((p for p in plant.products if p.id == item.routing), None)
        names = {c.name for seg in product.segments for c in seg.inspections} if product else set()
        if item.characteristic not in names:
            raise SutSettingsError(
                "spc_limits",
                f"spc_limits: routing {item.routing!r} of plant {plant.plant.code} inspects "
                f"no characteristic {item.characteristic!r}",
            )
    return limits


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without its middle
        return url.split("@")[-1]
