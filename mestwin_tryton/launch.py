"""Starting Tryton for a run: the ``tryton`` adapter factory (entry point group
``mestwin.sut_adapters``) and the adapter that stops its own trytond on close."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mestwin_tryton.adapter import TrytonSut, _admin_password
from twin.scenario.sut import SutEnvironment, SutSettingsError, SutUnavailable


class TrytonRun(TrytonSut):
    """A ``TrytonSut`` on a trytond this adapter started for the run (stopped by close)."""

    def __init__(self, server: Any, *, plant_start: dt.datetime) -> None:
        super().__init__(server.url, server.database, plant_start=plant_start)
        self.server = server

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.server.stop()


def open_tryton(settings: dict[str, Any], env: SutEnvironment) -> TrytonRun:
    """The ``tryton`` adapter factory (entry point group ``mestwin.sut_adapters``): start
    trytond for the run in ``<report dir>/tryton`` (settings: ``database``, its name),
    and, with ``link: opcua-external``, subscribe the adapter's gateway to the twin's
    OPC UA endpoint. ``env`` is the runner's ``SutEnvironment``."""
    from mestwin_tryton.server import TrytonServer, TrytonStartError

    unknown = sorted(set(settings) - {"database"})
    if unknown:
        raise SutSettingsError(
            unknown[0], f"tryton takes no setting {unknown[0]!r} (it takes: database)"
        )
    if env.mes_url:
        raise SutSettingsError(
            "mes_url", "tryton starts its own trytond; --mes-url is not supported"
        )
    server = TrytonServer(Path(env.report_dir) / "tryton", str(settings.get("database", "mestwin")))
    try:
        server.start(timeout=120.0)
    except TrytonStartError as exc:
        raise SutUnavailable(str(exc)) from exc
    sut = TrytonRun(server, plant_start=env.plant.plant.start)
    try:
        sut.rpc.login("admin", _admin_password())
        if env.link == "opcua-external" and env.opcua_endpoint:
            sut.subscribe(env.opcua_endpoint)
    except BaseException:
        sut.close()
        raise
    return sut
