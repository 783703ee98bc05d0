"""Console commands of the twin's OPC UA part (registered by ``mestwin.cli``).

``mestwin twin serve``, ``mestwin twin nodeset`` and ``mestwin bench opcua``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fastpaths import fast_paths_status

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups
    from plant_models.schema import PlantModel
    from twin.opcua.runtime import ServeOptions
    from twin.opcua.security import SecurityConfig


def _load_model(model: str) -> PlantModel:
    """A plant model by path or shipped name; a bad file ends the command with its problems."""
    from plant_models.loader import PlantModelError, load_plant_model

    try:
        return load_plant_model(model)
    except (PlantModelError, FileNotFoundError, OSError) as exc:
        typer.echo(f"error: plant model {model}: {exc}", err=True)
        raise typer.Exit(2) from None


def _security(mode: str, users: list[str], pki_dir: Path) -> SecurityConfig:
    from twin.opcua.security import SecurityConfig

    pairs: dict[str, str] = {}
    for entry in users:
        name, sep, password = entry.partition(":")
        if not sep or not name or not password:
            typer.echo(f"error: --user {entry!r}: expected NAME:PASSWORD", err=True)
            raise typer.Exit(2)
        pairs[name] = password
    if mode not in ("none", "sign-encrypt"):
        typer.echo(f"error: --security {mode!r}: expected none or sign-encrypt", err=True)
        raise typer.Exit(2)
    try:
        return SecurityConfig(mode=mode, users=pairs, pki_dir=pki_dir)  # type: ignore[arg-type]
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def serve(
    model: Annotated[str, typer.Argument(help="plant model YAML (path or shipped name)")],
    endpoint: Annotated[str, typer.Option(help="OPC UA endpoint")] = "opc.tcp://127.0.0.1:4840",
    speed: Annotated[
        float, typer.Option(help="simulated seconds per wall second (0: as fast as possible)")
    ] = 1.0,
    per_line: Annotated[
        bool,
        typer.Option(
            "--per-line",
            help="each line's engine and server in a process of its own, consecutive ports, "
            "one plant clock (a shared origin and speed)",
        ),
    ] = False,
    max_lag: Annotated[
        float,
        typer.Option(help="--per-line: a line's process reports CannotKeepPace past this lag (s)"),
    ] = 1.0,
    security: Annotated[str, typer.Option(help="none | sign-encrypt")] = "none",
    user: Annotated[
        list[str] | None,
        typer.Option(
            envvar="MESTWIN_OPCUA_USERS",
            help="NAME:PASSWORD allowed in (sign-encrypt; env: space-separated)",
        ),
    ] = None,
    pki_dir: Annotated[Path, typer.Option(help="where the self-signed certificate is kept")] = Path(
        "mestwin-data/pki"
    ),
    seed: Annotated[int, typer.Option(help="random seed of the run")] = 0,
    dispatch: Annotated[
        str, typer.Option(help="model: the model's own order stream; mes: only StoreAndStart")
    ] = "model",
    duration: Annotated[
        float, typer.Option(help="stop after this many simulated seconds (0: run until Ctrl-C)")
    ] = 0.0,
    sparkplug: Annotated[
        str | None,
        typer.Option(
            help="also publish as Sparkplug B edge nodes (one per line) to this MQTT broker, "
            "e.g. mqtt://127.0.0.1:1883"
        ),
    ] = None,
    group: Annotated[str, typer.Option(help="Sparkplug group id (with --sparkplug)")] = "mestwin",
    primary_host: Annotated[
        str | None,
        typer.Option(help="Sparkplug primary host id: birth only while its STATE is online"),
    ] = None,
) -> None:
    """Run the plant model and serve it over OPC UA (WorkUnitType instances), and over
    MQTT Sparkplug B with ``--sparkplug``."""
    from twin.opcua.runtime import ServedPlant, ServeOptions
    from twin.opcua.server import quiet_asyncua

    if speed < 0:
        typer.echo("error: --speed must be >= 0", err=True)
        raise typer.Exit(2)
    if dispatch not in ("model", "mes"):
        typer.echo(f"error: --dispatch {dispatch!r}: expected model or mes", err=True)
        raise typer.Exit(2)
    plant_model = _load_model(model)
    options = ServeOptions(
        endpoint=endpoint,
        speed=speed or None,
        per_line=per_line,
        security=_security(security, user or [], pki_dir),
        seed=seed,
        auto_dispatch=dispatch == "model",
        sparkplug=sparkplug,
        sparkplug_group=group,
        sparkplug_primary_host=primary_host,
    )
    if sparkplug is not None:
        from sparkplug_b.topic import check_id
        from twin.sparkplug.edge import broker_address

        try:
            broker_address(sparkplug)
            check_id("--group", group)
            if primary_host is not None:
                check_id("--primary-host", primary_host)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    quiet_asyncua()
    if per_line:
        _serve_per_line(plant_model, options, duration, max_lag)
        return

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with ServedPlant(plant_model, options) as plant:
            for ep in plant.endpoints:
                typer.echo(f"serving {plant_model.plant.code} at {ep}")
            if sparkplug:
                typer.echo(f"publishing {plant_model.plant.code} to {sparkplug} as group {group}")
            while not stop.is_set() and plant.error is None:
                if duration and plant.engine.now >= duration:
                    break
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                except TimeoutError:
                    continue
        if plant.error is not None:
            typer.echo(f"error: the twin engine stopped: {plant.error}", err=True)
            raise typer.Exit(1)

    try:
        asyncio.run(main())
    except ConnectionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"error: cannot serve at {endpoint}: {exc}", err=True)
        raise typer.Exit(1) from None


def _serve_per_line(
    model: PlantModel, options: ServeOptions, duration: float, max_lag: float
) -> None:
    """``twin serve --per-line``: one process per line (``twin.opcua.processes``)."""
    import time

    from twin.opcua.processes import LineProcessOptions, PerLinePlant, SplitError

    try:
        plant = PerLinePlant(
            model,
            options.endpoint,
            LineProcessOptions(
                speed=options.speed,
                seed=options.seed,
                auto_dispatch=options.auto_dispatch,
                max_lag=max_lag,
                security=options.security,
                sparkplug=options.sparkplug,
                sparkplug_group=options.sparkplug_group,
                sparkplug_primary_host=options.sparkplug_primary_host,
            ),
        )
    except (SplitError, ValueError) as exc:
        typer.echo(f"error: --per-line: {exc}", err=True)
        raise typer.Exit(2) from None
    stop = {"now": False}

    def on_signal(_sig: int, _frame: object) -> None:
        stop["now"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        clock = plant.start()
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for line, ep in zip(plant.lines, plant.endpoints, strict=True):
        typer.echo(f"serving {model.plant.code} line {line} at {ep} (process of its own)")
    if options.speed:
        typer.echo(
            f"plant clock: simulated 0 at {clock.origin:.3f} (epoch s), speed {options.speed:g}; "
            "each server publishes Plant/Pace (LagSeconds, CannotKeepPace)"
        )
    failed = None
    started = time.monotonic()
    while not stop["now"]:
        failed = plant.failed()
        if failed is not None:
            break
        if duration:
            reached = (
                clock.plant_seconds() if options.speed else time.monotonic() - started
            )  # unpaced: no common clock; --duration is then wall seconds
            if reached >= duration:
                break
        time.sleep(0.2)
    results = plant.stop()
    for line, result in results.items():
        if result:
            typer.echo(
                f"line {line}: stopped at {result['plant_seconds']:.0f} simulated s, "
                f"worst lag {result['max_lag']:.3f} s"
            )
    if failed is not None:
        typer.echo(f"error: {failed}", err=True)
        raise typer.Exit(1)


def nodeset(
    model: Annotated[str, typer.Argument(help="plant model YAML (path or shipped name)")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="NodeSet2 XML file to write")
    ] = Path("plant.xml"),
) -> None:
    """Write the plant's OPC UA information model as a NodeSet2 XML file."""
    from twin.opcua.nodeset import export_nodeset
    from twin.opcua.server import quiet_asyncua

    plant_model = _load_model(model)
    quiet_asyncua()
    logging.getLogger("asyncua.common.xmlexporter").setLevel(logging.ERROR)
    count = asyncio.run(export_nodeset(plant_model, output))
    typer.echo(f"wrote {count} nodes of {plant_model.plant.code} to {output}")


ProductWorkUnits = Annotated[int, typer.Option(help="work units of the product plant")]
ProductValues = Annotated[int, typer.Option(help="process values per work unit")]
ProductBudget = Annotated[
    float, typer.Option(help="seconds of product steps after which no step starts")
]
"""Options of a product bench's climb (``bench opcua``, ``bench sparkplug``)."""


def rates_option(changes: str) -> Any:
    """The ``--rates`` option of a product bench whose steps count ``changes``."""
    return typer.Option(
        help=f"product steps, {changes} per second, comma-separated; the climb stops at the "
        "first step with loss or lag"
    )


DEFAULT_RATES = "10000,20000,30000,40000,50000,60000,70000"
"""Up to past the product's limit on a 2-core machine (every step to 50,000/s was clean
there once the twin's write path was cut): the climb stops at the first step not clean."""
#: Steps of the raw ceiling: asyncua as shipped, and with the product's fast paths (which
#: carried 80,000/s without loss: the climb goes on past it).
RAW_RATES = (5_000.0, 10_000.0, 20_000.0, 40_000.0, 80_000.0)
FAST_RAW_RATES = (*RAW_RATES, 160_000.0)
TARGET_RATIO = 0.5
"""The product carries at least half what the fast-path pipe carries (issue 18)."""
PRODUCT_BUDGET_S = 120.0
"""No product step starts after this many seconds of product steps: ``make bench`` gives
the whole ``bench opcua`` 240 s, and the raw ceiling (~45 s), the MES's start and a last
step that lags (up to ~40 s with its drain) come on top."""


def bench_opcua(
    nodes: Annotated[int, typer.Option(help="Double nodes the bare server writes")] = 2000,
    seconds: Annotated[float, typer.Option(help="seconds per rate step")] = 3.0,
    raw_only: Annotated[bool, typer.Option("--raw-only", help="only the bare ceiling")] = False,
    work_units: ProductWorkUnits = 200,
    values: ProductValues = 10,
    rates: Annotated[str, rates_option("tag changes")] = DEFAULT_RATES,
    product_seconds: Annotated[float, typer.Option(help="seconds per product step")] = 6.0,
    budget: ProductBudget = PRODUCT_BUDGET_S,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="compare the product served by 1 and by N processes (plant processes and "
            "connectors; twin.opcua.processes) instead of the raw ceiling and ratio",
        ),
    ] = 1,
) -> None:
    """Raw OPC UA ceiling, then the product (twin -> server -> connector -> MES); ratio.

    The raw ceiling is measured twice. The ratio is taken, as issue 5 defines it, against
    asyncua as shipped: a bare server writing prebuilt values with
    ``write_attribute_value`` to a bare client subscription whose handler only counts.
    Beside it, the stricter ratio against the same pipe with the fast paths the product
    itself installs in asyncua on both ends: the twin's server (``twin.opcua.fastpath``:
    immutable DataValues, lean notifications and their lean encoding) and the connector
    (``mes_core.connectors.opcua.publish``: lean publish decoding), a pipe that does
    nothing but carry values.
    """
    from twin.bench_summary import figure, summary_line
    from twin.opcua.bench import best_clean, run_product
    from twin.opcua.bench_raw import run_raw_ceiling

    try:
        steps_asked = tuple(float(r) for r in rates.split(",") if r.strip())
    except ValueError:
        typer.echo(f"error: --rates {rates!r}: expected numbers separated by commas", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"1-minute load average at the start: {os.getloadavg()[0]:.1f} (2 cores)")
    typer.echo(fast_paths_status())  # says so when asyncua is not one they were checked on
    if processes > 1:
        _bench_processes(processes, steps_asked, product_seconds, work_units, values)
        return
    typer.echo(
        f"raw ceiling: bare asyncua server -> asyncua client (other process), {nodes} nodes, "
        "write_attribute_value of prebuilt values, one subscription, counting handler"
    )
    ceilings: dict[bool, float] = {}
    pipe_ms = 0.0
    for fast in (False, True):
        raw = asyncio.run(
            run_raw_ceiling(
                nodes=nodes,
                seconds=seconds,
                immutable=fast,
                lean=fast,
                rates=FAST_RAW_RATES if fast else RAW_RATES,
            )
        )
        typer.echo(
            "  with the product's fast paths (server: immutable DataValues, lean notifications, "
            "lean encoding; client: lean publish decoding):"
            if fast
            else "  asyncua as shipped (plain DataValues, deep-copied per monitored item):"
        )
        for s in raw.steps:
            server_ms, client_ms = s.cpu_ms_per_1000()
            typer.echo(
                f"    asked {s.asked_per_s:>8.0f}/s  wrote {s.achieved_per_s:>8.0f}/s  "
                f"received {s.received}/{s.written}  lost {s.lost}"
                f"{'  (saturated)' if s.saturated else ''}  "
                f"CPU ms per 1,000: server {server_ms:.0f}, client {client_ms:.0f}"
            )
        ceilings[fast] = raw.ceiling_per_s
        if fast:
            pipe = [sum(s.cpu_ms_per_1000()) for s in raw.steps if s.clean]
            pipe_ms = statistics.median(pipe) if pipe else 0.0
    best = ceilings[False]
    typer.echo(
        f"raw: {best:.0f} notifications/s delivered without loss by bare asyncua, the "
        f"ceiling of the ratio (issue 5); with the product's own fast paths on both ends: "
        f"{ceilings[True]:.0f}/s"
    )
    if raw_only:
        return
    typer.echo(
        f"product: twin ({work_units} work units x {values} process values, paced) -> "
        "OPC UA -> mestwin connect -> MES, rising rates"
    )
    steps, kind = asyncio.run(
        run_product(steps_asked, product_seconds, work_units, values, echo=typer.echo,
                    budget_s=budget)
    )  # fmt: skip
    top, limit = best_clean(steps, lambda s: s.tags_per_s, kind, typer.echo)
    if top is None:
        return
    typer.echo(
        f"product: {top.tags_per_s:.0f} tag changes/s end to end without loss "
        f"({top.events_per_s:.0f} plant events/s persisted, MES on {kind}){limit}"
    )
    product_ms = sum(top.cpu_ms_per_1000())
    typer.echo(
        f"CPU per 1,000 tag changes (less load-bound than rates): raw pipe {pipe_ms:.0f} ms "
        f"(server + client, median of the clean steps), product {product_ms:.0f} ms (twin + "
        f"connector + MES, PostgreSQL not counted): "
        f"{pipe_ms / product_ms if product_ms else 0.0:.2f} of the raw pipe's efficiency"
    )
    typer.echo(f"1-minute load average at the end: {os.getloadavg()[0]:.1f}")
    issue5 = top.tags_per_s / best if best else 0.0
    typer.echo(f"against bare asyncua as shipped ({best:.0f}/s, issue 5's ratio): {issue5:.2f}")
    ratio = top.tags_per_s / ceilings[True] if ceilings[True] else 0.0
    typer.echo(
        f"against the pipe with the product's fast paths on both ends "
        f"({ceilings[True]:.0f}/s, nothing but carrying values): {ratio:.2f} "
        f"(target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'})"
    )
    typer.echo(
        summary_line(
            figure(
                f"twin -> OPC UA -> mestwin connect -> MES on {kind}, without loss",
                top.tags_per_s,
                "tag changes/s",
            ),
            figure(
                "fast-path pipe: bare server -> client, the product's fast paths on both ends",
                ceilings[True],
                "tag changes/s",
            ),
            ratio,
            f">= {TARGET_RATIO} of the fast-path pipe",
            ratio >= TARGET_RATIO,
        )
    )
    typer.echo(f"ratio: {ratio:.2f}")


def _bench_processes(
    n: int, rates: tuple[float, ...], seconds: float, work_units: int, values: int
) -> None:
    """``bench opcua --processes N``: the product by 1 process, then by N."""
    from twin.opcua.bench_processes import run_processes

    typer.echo(
        f"product: {work_units} work units x {values} process values at speed 1, lines dealt "
        f"to k plant processes (engine + OPC UA server each, one plant clock), one "
        f"`mestwin connect` per process, one MES; k = 1, then {n}; rising rates"
    )
    results, kind = run_processes((1, n), rates, seconds, work_units, values, echo=typer.echo)
    best: dict[int, float] = {}
    for result in results:
        top = result.best
        if top is None:
            typer.echo(f"{result.processes} process(es): no clean step (MES on {kind})")
            best[result.processes] = 0.0
            continue
        twin, conn, mes = top.cpu_ms_per_1000()
        total = twin + conn + mes
        limit = (
            ""
            if len(result.steps) > len([s for s in result.steps if s.clean])
            else " (every step asked was clean: not the maximum)"
        )
        typer.echo(
            f"{result.processes} process(es): {top.tags_per_s:,.0f} tag changes/s end to end "
            f"without loss (MES on {kind}){limit}; CPU ms per 1,000 tag changes: plant {twin:.0f}, "
            f"connectors {conn:.0f}, MES {mes:.0f} (total {total:.0f}, PostgreSQL not "
            f"counted: one core carries ~{1e6 / total if total else 0:,.0f} tag changes/s)"
        )
        best[result.processes] = top.tags_per_s
    typer.echo(f"1-minute load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
    scale = best[n] / best[1] if best.get(1) else 0.0
    typer.echo(f"scaling: {n} processes / 1 process: {scale:.2f}")


def register(groups: CommandGroups) -> None:
    """Add this part's commands to the ``mestwin`` app."""
    groups.twin.command("serve")(serve)
    groups.twin.command("nodeset")(nodeset)
    groups.bench.command("opcua")(bench_opcua)
