"""Console commands of the twin's Sparkplug part: ``mestwin bench sparkplug``
(``mestwin twin serve --sparkplug`` lives with the OPC UA server it runs beside)."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Annotated

import typer

from twin.opcua.cli import ProductBudget, ProductValues, ProductWorkUnits, rates_option

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups

DEFAULT_RATES = "5000,10000,20000,30000,40000,50000"
PRODUCT_BUDGET_S = 120.0
TARGET_RATIO = 0.5
TARGET_PER_S = 10_000.0
"""The product carries at least half of bare MQTT, and at least this many changes/s."""
CEILING_RATES = (10_000.0, 20_000.0, 40_000.0, 80_000.0, 160_000.0, 320_000.0)


def bench_sparkplug(
    broker: Annotated[
        str, typer.Option(help="the MQTT broker both pipes go through")
    ] = "mqtt://127.0.0.1:1883",
    work_units: ProductWorkUnits = 200,
    values: ProductValues = 10,
    rates: Annotated[str, rates_option("metric changes")] = DEFAULT_RATES,
    seconds: Annotated[float, typer.Option(help="seconds per product step")] = 6.0,
    budget: ProductBudget = PRODUCT_BUDGET_S,
) -> None:
    """Bare MQTT pipe (ceiling), then the product (twin edge nodes -> broker -> mestwin
    connect --sparkplug -> MES) at rising rates; the ratio of the two."""
    from twin.bench_summary import figure, summary_line
    from twin.opcua.bench import best_clean
    from twin.sparkplug.bench import run_ceiling, run_product
    from twin.sparkplug.edge import broker_address

    try:
        broker_address(broker)
        asked = tuple(float(r) for r in rates.split(",") if r.strip())
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"1-minute load average at the start: {os.getloadavg()[0]:.1f} (2 cores)")
    typer.echo(
        f"product: twin ({work_units} work units x {values} process values, paced, one edge "
        f"node per 20 work units) -> {broker} -> mestwin connect --sparkplug -> MES"
    )
    steps, kind = asyncio.run(
        run_product(broker, asked, seconds, work_units, values, echo=typer.echo, budget_s=budget)
    )
    per_message = round(sum(s.metrics for s in steps) / max(1, sum(s.messages for s in steps))) or 1
    typer.echo(
        f"ceiling: bare paho-mqtt publisher -> {broker} -> bare paho-mqtt subscriber (other "
        f"process), prebuilt DDATA payloads of {per_message} metrics (the product's mean), "
        "QoS 0, paced, rising rates until a loss"
    )
    ceiling_steps = run_ceiling(broker, per_message, CEILING_RATES)
    for c in ceiling_steps:
        typer.echo(
            f"  asked {c.asked_per_s:>7.0f}/s  received {c.per_s:>7.0f} metric changes/s  "
            f"messages {c.received}/{c.published}  lost {c.lost}"
        )
    lossless = [c.per_s for c in ceiling_steps if not c.lost]
    ceiling = max(lossless, default=0.0)
    typer.echo(f"ceiling: {ceiling:.0f} metric changes/s without loss")
    top, limit = best_clean(steps, lambda s: s.per_s, kind, typer.echo)
    if top is None:
        return
    typer.echo(
        f"product: {top.per_s:.0f} metric changes/s end to end without loss "
        f"({top.events_per_s:.0f} plant events/s persisted, MES on {kind}){limit}"
    )
    typer.echo(f"1-minute load average at the end: {os.getloadavg()[0]:.1f}")
    ratio = top.per_s / ceiling if ceiling else 0.0
    met = ratio >= TARGET_RATIO and top.per_s >= TARGET_PER_S
    typer.echo(
        summary_line(
            figure(
                f"twin edge nodes -> MQTT -> mestwin connect --sparkplug -> MES on {kind}, "
                "without loss",
                top.per_s,
                "metric changes/s",
            ),
            figure("bare MQTT: paho-mqtt publisher -> broker -> subscriber", ceiling,
                   "metric changes/s"),
            ratio,
            f">= {TARGET_RATIO} of bare MQTT and >= {TARGET_PER_S:,.0f} metric changes/s",
            met,
        )
    )  # fmt: skip
    typer.echo(f"ratio: {ratio:.2f}")


def register(groups: CommandGroups) -> None:
    """Add this part's commands to the ``mestwin`` app."""
    groups.bench.command("sparkplug")(bench_sparkplug)
