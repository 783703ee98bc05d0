"""Console commands of the twin's OPC UA part (registered by ``mestwin.cli``).

``mestwin twin serve``, ``mestwin twin nodeset`` and ``mestwin bench opcua``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups


def bench_opcua(
    nodes: int = typer.Option(2000, help="Double nodes the bare server writes."),
    seconds: float = typer.Option(3.0, help="Seconds per rate step."),
    raw_only: bool = typer.Option(False, "--raw-only", help="Only the bare ceiling."),
) -> None:
    """Measure the raw OPC UA ceiling and the product (twin -> server -> connector -> MES)."""
    from twin.opcua.bench_raw import run_raw_ceiling

    raw = asyncio.run(run_raw_ceiling(nodes=nodes, seconds=seconds))
    typer.echo(f"raw ceiling: bare asyncua server -> asyncua client (other process), {nodes} nodes")
    for s in raw.steps:
        typer.echo(
            f"  asked {s.asked_per_s:>8.0f}/s  wrote {s.achieved_per_s:>8.0f}/s  "
            f"received {s.received}/{s.written}  lost {s.lost}"
            f"{'  (saturated)' if s.saturated else ''}"
        )
    typer.echo(f"raw: {raw.ceiling_per_s:.0f} notifications/s delivered without loss")


def register(groups: CommandGroups) -> None:
    """Add this part's commands to the ``mestwin`` app."""
    groups.bench.command("opcua")(bench_opcua)
