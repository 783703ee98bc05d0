"""Console commands of this part (registered by ``mestwin.cli``): ``mestwin loadtest`` and
``mestwin bench ingest|api|e2e|all``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups


def _default_out(kind: str) -> Path:
    from datetime import UTC, datetime

    # Under reports/, which git ignores, as the scenario runner's reports are.
    return Path("reports") / kind / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def loadtest(
    users: Annotated[int, typer.Option(min=1, help="simulated users (people and systems)")] = 34,
    spawn_rate: Annotated[float, typer.Option(min=0.1, help="users started per second")] = 10.0,
    duration: Annotated[str, typer.Option(help="run time: 90s, 2m, 1h")] = "2m",
    mes_url: Annotated[
        str | None, typer.Option(help="a running MES; default: start one here")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="database of the MES started here (default: embedded SQLite)"),
    ] = None,
    mes_workers: Annotated[
        int, typer.Option(min=1, help="uvicorn workers of the MES started here")
    ] = 2,
    workers: Annotated[
        int, typer.Option(min=0, help="local Locust worker processes (0: one process)")
    ] = 0,
    profile: Annotated[
        Path | None, typer.Option(help="load profile YAML (mix, pace, SLOs)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="folder for CSV, HTML and report")] = None,
    admin_user: Annotated[str, typer.Option(help="MES administrator who seeds")] = "admin",
    seed_file: Annotated[
        Path | None, typer.Option(help="reuse a seed manifest instead of seeding again")
    ] = None,
    seed_only: Annotated[
        bool, typer.Option(help="seed --mes-url, write OUT/seed.json for Locust hosts, stop")
    ] = False,
) -> None:
    """Load-test the MES API with Locust (headless) and judge the SLOs: exit 1 if one fails.

    The administrator's password comes from MESTWIN_ADMIN_PASSWORD (default ``admin``, the
    embedded demo's)."""
    from rich.console import Console

    from loadtests.config import DEFAULT_PROFILE, ProfileError
    from loadtests.loadtest import LoadTestOptions, parse_duration, run_loadtest
    from loadtests.runner import LocustError
    from loadtests.servers import ServerError
    from loadtests.slo import StatsError
    from mes_core.client import MesClientError

    console = Console()
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--duration") from exc
    options = LoadTestOptions(
        users=users,
        spawn_rate=spawn_rate,
        duration_s=seconds,
        out_dir=out or _default_out("loadtest"),
        mes_url=mes_url,
        database_url=database_url,
        mes_workers=mes_workers,
        locust_workers=workers,
        profile=profile or DEFAULT_PROFILE,
        admin_user=admin_user,
        admin_password=os.environ.get("MESTWIN_ADMIN_PASSWORD", "admin"),
        seed_file=seed_file,
    )
    if seed_only:
        if not mes_url:
            raise typer.BadParameter("--seed-only needs --mes-url", param_hint="--seed-only")
        from loadtests.config import load_profile
        from loadtests.seed import seed_mes

        options.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            manifest = seed_mes(
                mes_url,
                load_profile(options.profile).seed,
                admin_user=admin_user,
                admin_password=options.admin_password,
            )
        except (ProfileError, MesClientError) as exc:
            console.print(f"[red]seeding failed:[/red] {exc}")
            raise typer.Exit(2) from exc
        manifest.write(options.out_dir / "seed.json")
        console.print(f"seed manifest: {options.out_dir / 'seed.json'}")
        return
    try:
        passed = run_loadtest(options, console)
    except (ProfileError, LocustError, ServerError, StatsError, MesClientError) as exc:
        console.print(f"[red]load test did not run:[/red] {exc}")
        raise typer.Exit(2) from exc
    if not passed:
        console.print("[red bold]SLO failed[/red bold]")
        raise typer.Exit(1)
    console.print("[green]all SLOs held[/green]")


def bench_ingest(
    backend: Annotated[
        list[str] | None,
        typer.Option(help="postgresql and/or sqlite (default: both)"),
    ] = None,
    events: Annotated[int, typer.Option(min=1000, help="events to ingest")] = 100_000,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="events per batch")] = 2000,
    profile: Annotated[
        int, typer.Option(min=0, help="print this many hottest functions of the ingest")
    ] = 0,
) -> None:
    """Plant events/s of the MES batch ingest vs a bare multi-row insert of the same rows."""
    from rich.console import Console

    from loadtests.bench.ingest import bench_ingest as run

    console = Console()
    for name in backend or ["postgresql", "sqlite"]:
        if name not in ("postgresql", "sqlite"):
            raise typer.BadParameter(f"{name!r}: postgresql or sqlite", param_hint="--backend")
        run(name, events=events, batch=batch, profile_top=profile).print(console)


def bench_api(
    rate: Annotated[float, typer.Option(min=1, help="offered transactions per second")] = 200,
    users: Annotated[int, typer.Option(min=1, help="Locust users offering them")] = 20,
    seconds: Annotated[float, typer.Option(min=5, help="measured seconds per run")] = 30,
    repeats: Annotated[
        int, typer.Option(min=1, help="runs a side; the one with the median p99 is shown")
    ] = 1,
) -> None:
    """Operator transactions with Locust: MES (PostgreSQL, 2 workers) vs a bare endpoint."""
    from rich.console import Console

    from loadtests.bench.api import bench_api as run

    run(rate=rate, users=users, seconds=seconds, repeats=repeats).print(Console())


def bench_e2e(
    plant_seconds: Annotated[
        float, typer.Option(min=60, help="plant time of each step (simulated seconds)")
    ] = 2400,
    speeds: Annotated[
        str, typer.Option(help="speed factors to climb, comma-separated")
    ] = "160,320,640,1000,1500,2000,3000",
    max_pace: Annotated[
        bool, typer.Option(help="then one run as fast as possible: the pace it reaches")
    ] = True,
) -> None:
    """The reference plant at rising speed factors: highest speed held with nothing lost."""
    from rich.console import Console

    from loadtests.bench.e2e import bench_e2e as run

    try:
        factors = [float(s) for s in speeds.split(",") if s.strip()]
    except ValueError as exc:
        raise typer.BadParameter(
            f"{speeds!r}: numbers, e.g. 30,60,120", param_hint="--speeds"
        ) from exc
    run(speeds=factors, plant_s=plant_seconds, max_pace=max_pace).print(Console())


def bench_all(
    write: Annotated[
        Path | None, typer.Option(help="rewrite this Markdown file (docs/BENCHMARKS.md)")
    ] = None,
    quick: Annotated[bool, typer.Option(help="smaller sizes: a smoke run")] = False,
) -> None:
    """Every benchmark (sim, opcua, dashboards, ingest, api, e2e), then BENCHMARKS.md."""
    from rich.console import Console

    from loadtests.bench.all import bench_all as run

    run(Console(), write, quick=quick)


def register(groups: CommandGroups) -> None:
    """Add this part's commands to the ``mestwin`` app."""
    groups.root.command("loadtest")(loadtest)
    groups.bench.command("ingest")(bench_ingest)
    groups.bench.command("api")(bench_api)
    groups.bench.command("e2e")(bench_e2e)
    groups.bench.command("all")(bench_all)
