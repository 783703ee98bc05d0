"""The Dash app: a top bar, a router and the pages, and ways to serve it.

``create_app`` builds an app bound to one MES; ``serve`` runs it on a port, either
blocking (``mestwin dashboard``) or in a background thread (``block=False``: the scenario
runner's ``mestwin run --dashboard`` and the browser tests), returning a handle to stop it.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from dash import Dash, Input, Output, dcc, html
from werkzeug.serving import BaseWSGIServer, make_server

from dashboards.pages import (
    genealogy,
    line,
    login,
    orders,
    plant,
    quality,
    report,
    supervisor,
    terminal,
    trainer,
)
from dashboards.pages.base import PageContext
from dashboards.session import Connector, Credentials, SessionRegistry
from dashboards.source import SourceError
from mes_core.client.local import browsable_url

if TYPE_CHECKING:
    from dashboards.run_control import RunControlClient

log = logging.getLogger("dashboards")

#: Pages in menu order (login is reachable from the top bar, not the menu).
PAGES: tuple[ModuleType, ...] = (
    plant,
    line,
    orders,
    quality,
    genealogy,
    report,
    terminal,
    supervisor,
    trainer,
)
ALL_PAGES: tuple[ModuleType, ...] = (*PAGES, login)

ASSETS = Path(__file__).with_name("assets")


def create_app(
    mes_url: str,
    *,
    credentials: Credentials | None = None,
    connect: Connector | None = None,
    reports: Sequence[Path] = (),
    period_ms: int = 1000,
    control: RunControlClient | None = None,
    act_at_plant_time: bool = False,
) -> Dash:
    """A dashboard app over the MES at ``mes_url``.

    ``credentials``: the user new browser sessions log in as (none: each must log in at
    /login). ``connect`` opens a session (default: the MES client of ``mes_core.client``).
    ``reports``: report.json files offered on the Scenario report page.
    ``control``: the control channel of a scenario run beside (trainer console, the
    trainees' session record); ``act_at_plant_time``: terminal actions state the plant's
    clock (a simulated run, see ``dashboards.acting``).
    """
    if connect is None:
        from dashboards.mes_source import mes_connector

        connect = mes_connector(mes_url)
    ctx = PageContext(
        sessions=SessionRegistry(connect, default_credentials=credentials),
        mes_url=mes_url,
        period_ms=period_ms,
        reports=[Path(p) for p in reports],
        control=control,
        act_at_plant_time=act_at_plant_time,
    )
    app = Dash(
        __name__,
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
        title="mestwin",
        # Live pages refresh every second: keep the tab title still.
        update_title="",
        serve_locally=True,
    )
    # Several workers behind one cookie need the same key; one process can make its own.
    app.server.secret_key = os.environ.get("MESTWIN_DASHBOARD_SECRET") or secrets.token_hex(32)
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Div(
                [
                    html.Span("mestwin", className="brand"),
                    *[
                        dcc.Link(
                            page.TITLE,
                            href=page.PATH,
                            id=f"nav-{page.PAGE}",
                            className="nav",
                        )
                        for page in PAGES
                    ],
                    html.Span(
                        [
                            html.Span(id="whoami"),
                            " · ",
                            dcc.Link("log in", href="/login"),
                            html.Span(f" · MES {mes_url}", className="mes-url"),
                        ],
                        className="who",
                    ),
                ],
                className="topbar",
            ),
            html.Div(id="page"),
        ]
    )
    app.server.config["MESTWIN_CONTEXT"] = ctx
    _register_router(app, ctx)
    for page in ALL_PAGES:
        page.register(app, ctx)
    return app


def context_of(app: Dash) -> PageContext:
    """The page context an app was built with (for tests and the benchmark)."""
    ctx: PageContext = app.server.config["MESTWIN_CONTEXT"]
    return ctx


def _register_router(app: Dash, ctx: PageContext) -> None:
    by_path = {page.PATH: page for page in ALL_PAGES}

    @app.callback(
        Output("page", "children"),
        *[Output(f"nav-{page.PAGE}", "className") for page in PAGES],
        Input("url", "pathname"),
        Input("url", "search"),
    )
    def route(pathname: str | None, search: str | None) -> tuple[Any, ...]:
        page = by_path.get((pathname or "/").rstrip("/") or "/")
        query = parse_qs((search or "").lstrip("?"))
        classes = tuple("nav active" if p is page else "nav" for p in PAGES)
        if page is None:
            return (
                html.Div(
                    [
                        html.H2("Not found"),
                        html.P(f"There is no page {pathname}."),
                        dcc.Link("Go to the plant", href="/"),
                    ],
                    className="page",
                ),
                *classes,
            )
        return (page.layout(ctx, query), *classes)

    @app.callback(Output("whoami", "children"), Input("url", "pathname"))
    def whoami(_pathname: str | None) -> str:
        try:
            session = ctx.sessions.current()
        except SourceError:
            return "not logged in"
        if session.user is None:
            return "not logged in"
        return f"{session.user} ({', '.join(session.roles) or 'no role'})"


@dataclass
class DashboardServer:
    """A dashboard served from a background thread; ``stop()`` shuts it down."""

    app: Dash
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        return browsable_url(self.server.host, self.port)

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
        context_of(self.app).sessions.close_all()

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    mes_url: str,
    port: int = 8050,
    *,
    host: str = "127.0.0.1",
    credentials: Credentials | None = None,
    reports: Sequence[Path] = (),
    period_ms: int = 1000,
    block: bool = True,
    app: Dash | None = None,
    control: RunControlClient | None = None,
    act_at_plant_time: bool = False,
) -> DashboardServer:
    """Serve the dashboards for the MES at ``mes_url`` on ``host:port`` (``port=0``: any
    free port; read it from the handle).

    ``block=True`` serves until interrupted (then stops cleanly and returns the handle);
    ``block=False`` serves from a daemon thread and returns at once: call ``stop()``.
    Threaded WSGI server: each browser's refresh runs in its own thread, so one slow page
    never holds up another.
    """
    if app is None:
        app = create_app(
            mes_url,
            credentials=credentials,
            reports=reports,
            period_ms=period_ms,
            control=control,
            act_at_plant_time=act_at_plant_time,
        )
    # One line per request and second per browser would drown a trainer's console.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="mestwin-dashboard", daemon=True)
    handle = DashboardServer(app=app, server=server, thread=thread)
    thread.start()
    log.info("dashboards at %s (MES %s)", handle.url, mes_url)
    if block:
        try:
            thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            handle.stop()
    return handle
