"""The ``mestwin`` console command: one Typer app that fronts every part.

Each part owns its commands in its own ``cli`` module and adds them here through a
``register(groups)`` function, so that the front door stays a list and no part reaches
into another. Heavy imports (FastAPI, asyncua, Dash...) happen inside the commands, not at
start-up, so that ``mestwin --help`` stays fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import typer


@dataclass
class CommandGroups:
    """The command groups every part may add commands to."""

    root: typer.Typer
    db: typer.Typer = field(default_factory=lambda: typer.Typer(help="Database migrations."))
    audit: typer.Typer = field(default_factory=lambda: typer.Typer(help="The audit trail."))
    mes: typer.Typer = field(
        default_factory=lambda: typer.Typer(help="A running MES: load a plant's master data.")
    )
    erp: typer.Typer = field(
        default_factory=lambda: typer.Typer(help="ERP exchange in B2MML V0701.")
    )
    twin: typer.Typer = field(
        default_factory=lambda: typer.Typer(help="The plant twin: simulate, serve over OPC UA.")
    )
    bench: typer.Typer = field(
        default_factory=lambda: typer.Typer(help="Benchmarks: product figure beside its ceiling.")
    )


# Modules that add commands, in the order of the data flow: ERP -> MES -> connector ->
# OPC UA -> twin -> scenario -> dashboards -> load tests.
COMMAND_MODULES: tuple[str, ...] = (
    "mes_core.cli",
    "mes_core.erp.cli",
    "twin.scenario.load_plant",
    "mes_core.connectors.opcua.cli",
    "twin.cli",
    "twin.opcua.cli",
    "twin.sparkplug.cli",
    "twin.scenario.cli",
    "twin.scenario.evidence_cli",
    "mestwin_tryton.cli",
    "dashboards.cli",
    "loadtests.cli",
)


def build_app() -> typer.Typer:
    """Assemble the console app from every part's ``register`` function."""
    app = typer.Typer(
        help="mestwin: a digital-twin test bench for Manufacturing Execution Systems.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    groups = CommandGroups(root=app)
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(groups)
    app.add_typer(groups.db, name="db")
    app.add_typer(groups.audit, name="audit")
    app.add_typer(groups.mes, name="mes")
    app.add_typer(groups.erp, name="erp")
    app.add_typer(groups.twin, name="twin")
    app.add_typer(groups.bench, name="bench")
    return app


def main() -> None:
    build_app()()
