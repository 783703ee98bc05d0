"""``mestwin mes load-plant PLANT.yaml --url URL``: a plant model's master data into an MES.

One command takes a fresh MES to one that knows the plant: its equipment hierarchy (site,
lines, work units with their equipment classes), materials, routings (operations
definitions with each segment's bill of materials and quality characteristics), people
(roles, certifications; each may log in with the password ``--people-password``), material
lots and shift calendars. It is the load a scenario run does first
(:meth:`twin.scenario.sut_mes_core.MesCoreSut.load_plant`), so that a newcomer can then
import the shipped ERP samples (``mestwin erp import plant_models/erp/*.xml``).

No simulated plant runs here: people act at terminals on the MES's clock, so the plant
starts today. Dates are shifted by ``today - plant start date`` (what is valid, or
expired, at the plant model's start is so for the MES today), and the people get no
``backdate`` permission. (A scenario run keeps them on the plant's own timeline instead.)
A refusal (a plant loaded before, a wrong password, an MES that does not answer) exits 1
with one line naming the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(1)


def load_plant(
    plant_file: Annotated[Path, typer.Argument(help="a plant model YAML file")],
    url: Annotated[str, typer.Option("--url", envvar="MESTWIN_MES_URL", help="the MES")],
    user: Annotated[str, typer.Option("--user", help="an administrator")] = "admin",
    password: Annotated[
        str, typer.Option("--password", envvar="MESTWIN_PASSWORD", help="the user's password")
    ] = "admin",
    people_password: Annotated[
        str, typer.Option(help="password every person of the plant logs in with")
    ] = "mestwin",
) -> None:
    """Load a plant model's master data (equipment, materials, routings and bills of
    materials, people, lots, shift calendars) into a running MES, in one call."""
    from datetime import UTC, datetime

    from mes_core.client import MesClientError
    from plant_models.loader import PlantModelError, load_plant_model
    from twin.scenario.sut import SutUnavailable
    from twin.scenario.sut_mes_core import MesCoreSut

    try:
        plant = load_plant_model(plant_file)
    except (OSError, PlantModelError) as exc:
        raise _fail(f"{plant_file}: {exc}") from None
    start = plant.plant.start
    shift = datetime.now(UTC).date() - start.date()
    sut = MesCoreSut(
        url,
        plant_start=start,
        admin_user=user,
        admin_password=password,
        passwords={o.id: people_password for o in plant.operators},
        date_shift=shift,
        backdating=False,
    )
    try:
        result = sut.load_plant(plant)
    except MesClientError as exc:
        hint = " (is the plant loaded already?)" if exc.status == 409 else ""
        raise _fail(
            f"{url} refused the plant {plant.plant.code} ({exc.rule}, HTTP {exc.status}): "
            f"{exc.message}{hint}"
        ) from None
    except SutUnavailable as exc:
        raise _fail(f"cannot reach the MES at {url}: {exc}") from None
    finally:
        sut.close()
    typer.echo(
        f"loaded plant {plant.plant.code} into {url}: {result.equipment} equipment, "
        f"{result.materials} materials, {result.routings} routings, {result.persons} people, "
        f"{result.lots} lots, {len(plant.shift_calendars)} shift calendars "
        f"(dates shifted by {shift.days} days to today)"
    )


def register(groups: CommandGroups) -> None:
    """Add ``mes load-plant`` to the ``mestwin`` app."""
    groups.mes.command("load-plant")(load_plant)
