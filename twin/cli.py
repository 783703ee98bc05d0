"""Console commands of the twin engine: ``mestwin twin simulate``, ``mestwin twin experiment``
and ``mestwin bench sim``.

Registered by ``mestwin.cli``; heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups


def _seconds(value: str, option: str) -> float:
    from plant_models.durations import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None
    if seconds < 0:
        raise typer.BadParameter(f"must not be negative, got {value!r}", param_hint=option)
    return seconds


def simulate_command(
    model: Annotated[
        str, typer.Argument(help="Plant model YAML, or a shipped one: bottling_line, ...")
    ],
    until: Annotated[str, typer.Option(help="Simulated time: 90s, 30m, 8h, 1d.")] = "8h",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same run).")] = 1,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the ground-truth summary here.")
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="Pace to the wall clock: 1 = real time, 60 = a minute a second."),
    ] = None,
    max_lag: Annotated[
        float,
        typer.Option(help="Paced runs: fail when this many wall seconds behind."),
    ] = 1.0,
    replications: Annotated[
        int, typer.Option(min=1, help="Independent replications (KPIs with 95 % CIs).")
    ] = 1,
    warmup: Annotated[str, typer.Option(help="Warm-up cut from replication KPIs.")] = "0s",
    intervals: Annotated[
        bool, typer.Option(help="Include every state interval in the JSON.")
    ] = False,
) -> None:
    """Run a plant model alone, as fast as possible (or paced), and print its KPIs."""
    from rich.console import Console

    from plant_models.loader import PlantModelError, load_plant_model
    from twin.engine import CannotKeepPace
    from twin.simulate import (
        print_replications,
        print_summary,
        replicate_with_progress,
        simulate,
        write_json,
    )

    horizon = _seconds(until, "--until")
    cut = _seconds(warmup, "--warmup")
    if horizon <= 0:
        raise typer.BadParameter("must be > 0", param_hint="--until")
    if speed is not None and speed <= 0:
        raise typer.BadParameter(f"must be > 0, got {speed}", param_hint="--speed")
    console = Console()
    err = Console(stderr=True)
    try:
        plant = load_plant_model(model)
    except PlantModelError as exc:
        err.print(f"[red]invalid plant model[/red]\n{exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    if replications > 1:
        if cut >= horizon:
            raise typer.BadParameter("must be shorter than --until", param_hint="--warmup")
        result = replicate_with_progress(plant, replications, horizon, seed, cut, err)
        print_replications(result, console)
        if json_out is not None:
            write_json(
                json_out,
                {
                    "plant": plant.plant.code,
                    "seed": seed,
                    "until": horizon,
                    "replications": replications,
                    "kpis": result.as_dict(),
                },
            )
        return
    try:
        summary = simulate(
            plant,
            horizon,
            seed,
            speed=speed,
            max_lag=max_lag,
            include_intervals=intervals,
            console=err,
        )
    except CannotKeepPace as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(3) from None
    print_summary(summary, console)
    if json_out is not None:
        write_json(json_out, summary)
        err.print(f"ground truth written to {json_out}")


def bench_sim_command(
    until: Annotated[str, typer.Option(help="Simulated time of the reference plant.")] = "1d",
    seed: Annotated[int, typer.Option()] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Runs of each; medians reported.")] = 3,
    callgrind_until: Annotated[
        str,
        typer.Option(
            help="Simulated time counted in instructions per event under callgrind "
            "(0: not counted)."
        ),
    ] = "1h",
    write: Annotated[
        Path | None, typer.Option(help="Update this benchmark's section of this Markdown file.")
    ] = None,
) -> None:
    """Engine event rate on the reference plant beside a bare SimPy loop; ends `ratio: X`."""
    from twin.bench import TARGET_RATIO, bench_sim, instructions_text, markdown, write_section
    from twin.bench_summary import figure, summary_line

    counted = (
        0.0 if callgrind_until.strip() == "0" else _seconds(callgrind_until, "--callgrind-until")
    )
    result = bench_sim(_seconds(until, "--until"), seed, repeats, counted)
    typer.echo(
        f"model: {result.model_events} events in {result.model_seconds:.2f} CPU s = "
        f"{result.model_rate:,.0f} events/s (reference_plant, {until}, publishing off)"
    )
    typer.echo(
        f"bare:  {result.bare_events} events in {result.bare_seconds:.2f} CPU s = "
        f"{result.bare_rate:,.0f} events/s (200 SimPy processes, exponential timeouts)"
    )
    typer.echo(f"ratio of each pair: {', '.join(f'{r:.3f}' for r in result.ratios)}")
    typer.echo(instructions_text(result))
    if write is not None:
        write_section(write, markdown(result))
        typer.echo(f"written to {write}")
    typer.echo(
        summary_line(
            figure("twin engine, reference plant", result.model_rate, "events/CPU s"),
            figure("bare SimPy loop", result.bare_rate, "events/CPU s"),
            result.ratio,
            f">= {TARGET_RATIO} (model / bare events per CPU s, median of the pairs)",
            result.ratio >= TARGET_RATIO,
        )
    )
    typer.echo(f"ratio: {result.ratio:.3f}")


def experiment_command(
    design_file: Annotated[Path, typer.Argument(help="Experiment design YAML.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for results.json, results.csv, report.html "
            "(default: experiment-<design name>)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="A running Dask scheduler, e.g. tcp://host:8786 "
            "(default: a LocalCluster on this machine)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="LocalCluster worker processes (default: cores).")
    ] = None,
    cell: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Rerun only this cell, in this process (no cluster); "
            "its figures equal the full run's bit for bit.",
        ),
    ] = None,
) -> None:
    """Run a design of plant-model parameters x replications on Dask; KPIs with CIs."""
    from rich.console import Console

    from plant_models.loader import PlantModelError
    from twin.experiment.design import DesignError, load_design

    err = Console(stderr=True)
    try:
        design = load_design(design_file)
    except (DesignError, PlantModelError) as exc:
        err.print(f"[red]invalid experiment design[/red]\n{exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    folder = out or Path(f"experiment-{design_file.stem}")
    if cell is not None:
        _experiment_cell(design, cell, folder, err)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from twin.experiment.report import write_all
    from twin.experiment.run import run_experiment

    total = len(design.cells) * design.spec.replications
    err.print(
        f"{len(design.cells)} cells x {design.spec.replications} replications = {total} runs "
        f"on {scheduler or 'a LocalCluster'}"
    )
    with Progress(
        TextColumn("[bold]runs"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("runs", total=total)
        result = run_experiment(
            design,
            scheduler=scheduler,
            workers=workers,
            progress=lambda done, _total: progress.update(task, completed=done),
        )
    paths = write_all(folder, result)
    _print_cells(design, result.cells)
    typer.echo(
        f"{total} runs on {result.scheduler} ({result.workers} workers) in "
        f"{result.wall_seconds:.1f} s; written: " + ", ".join(str(p) for p in paths.values())
    )


def _experiment_cell(design: Any, index: int, folder: Path, err: Any) -> None:
    from twin.experiment.report import cell_dict
    from twin.experiment.run import run_cell
    from twin.simulate import write_json

    if index >= len(design.cells):
        raise typer.BadParameter(
            f"the design has cells 0..{len(design.cells) - 1}", param_hint="--cell"
        )
    result = run_cell(design, index)
    _print_cells(design, [result])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"cell-{index}.json"
    write_json(path, cell_dict(result, design))
    typer.echo(f"cell {index} written to {path}")


def _print_cells(design: Any, cells: list[Any]) -> None:
    import math

    from rich import box
    from rich.console import Console
    from rich.table import Table

    labels = [p.label for p in design.parameters]
    conf = design.spec.confidence
    table = Table(box=box.SIMPLE, title=f"KPI means and {conf:.0%} CI half-widths per cell")
    for col in ("cell", *labels, "KPI", "mean", "+-"):
        table.add_column(col, justify="right" if col in ("cell", "mean", "+-") else "left")
    for cell in cells:
        shown = design.value_labels(cell.cell)
        for name, est in cell.kpis.items():
            if math.isnan(est.mean):
                continue
            table.add_row(
                str(cell.cell.index),
                *(shown[label] for label in labels),
                name,
                f"{est.mean:.4g}",
                f"{est.half_width:.2g}",
            )
    Console().print(table)


def register(groups: CommandGroups) -> None:
    """Add ``twin simulate``, ``twin experiment`` and ``bench sim`` to the ``mestwin`` app."""
    groups.twin.command("simulate")(simulate_command)
    groups.twin.command("experiment")(experiment_command)
    groups.bench.command("sim")(bench_sim_command)
