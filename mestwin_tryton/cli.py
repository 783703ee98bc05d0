"""``mestwin tryton serve PLANT``: a Tryton for a plant, ready to be driven.

Starts ``trytond`` (SQLite in ``--folder``), creates its database with the production
modules (``trytond-admin``, through a cached template), loads the plant model's master
data over JSON-RPC, prints where it answers and what was loaded, and serves until Ctrl-C
(or stops at once with ``--exit``, leaving the loaded database in the folder).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups

app = typer.Typer(help="Tryton 8.2, a second MES under test (needs the extra named tryton).")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(1)


@app.command("serve")
def serve(
    plant_file: Annotated[str, typer.Argument(help="a plant model: YAML file or shipped name")],
    folder: Annotated[Path, typer.Option("--folder", help="where the database and logs go")] = Path(
        "tryton-run"
    ),
    database: Annotated[str, typer.Option(help="the database name")] = "mestwin",
    port: Annotated[int, typer.Option(help="the port (0: a free one)")] = 0,
    exit_: Annotated[
        bool, typer.Option("--exit", help="stop once loaded instead of serving")
    ] = False,
) -> None:
    """Start trytond with the production modules and load the plant's master data
    (products, BOMs, routings, work centers, lots, employees, quality controls)."""
    from mestwin_tryton.masterdata import load_plant
    from mestwin_tryton.rpc import TrytonError
    from mestwin_tryton.server import ADMIN, ADMIN_PASSWORD, TrytonServer, TrytonStartError
    from plant_models.loader import PlantModelError, load_plant_model

    try:
        plant = load_plant_model(plant_file)
    except (OSError, PlantModelError) as exc:
        raise _fail(f"{plant_file}: {exc}") from None
    server = TrytonServer(folder, database, port or None)
    began = time.monotonic()
    try:
        server.start()
        rpc = server.rpc()
        md = load_plant(rpc, plant)
        rpc.close()
    except (TrytonStartError, TrytonError) as exc:
        server.stop()
        raise _fail(str(exc)) from None
    typer.echo(
        f"Tryton {server.url}/{database}/rpc/ (user {ADMIN}, password {ADMIN_PASSWORD}): "
        f"plant {plant.plant.code} loaded in {time.monotonic() - began:.1f} s: "
        f"{len(md.products)} products, {len(md.boms)} BOMs, {len(md.routings)} routings, "
        f"{len(md.work_centers)} work centers, {len(md.lots)} lots, "
        f"{len(md.employees)} employees, {len(md.controls)} quality controls"
    )
    if exit_:
        server.stop()
        return
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def register(groups: CommandGroups) -> None:
    """Add ``mestwin tryton ...`` to the console app."""
    groups.root.add_typer(app, name="tryton")
