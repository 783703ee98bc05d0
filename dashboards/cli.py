"""Console commands of this part (registered by ``mestwin.cli``): ``mestwin dashboard``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups


def dashboard(
    mes_url: Annotated[
        str, typer.Option("--mes-url", envvar="MESTWIN_MES_URL", help="Base URL of the MES API.")
    ],
    port: Annotated[int, typer.Option(help="Port to serve on (0: any free port).")] = 8050,
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    user: Annotated[
        str | None,
        typer.Option(
            envvar="MESTWIN_DASHBOARD_USER",
            help="MES user new browser sessions log in as (else each logs in at /login).",
        ),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="MESTWIN_DASHBOARD_PASSWORD", help="Password of --user."),
    ] = None,
    report: Annotated[
        list[Path] | None,
        typer.Option(help="A report.json to offer on the Scenario report page (repeatable)."),
    ] = None,
    act_at_plant_time: Annotated[
        bool,
        typer.Option(
            help="Terminal actions state the plant's clock as their time (a simulated run "
            "beside: its people hold the backdate permission); else the MES's clock."
        ),
    ] = False,
    run_control_url: Annotated[
        str | None,
        typer.Option(
            envvar="MESTWIN_RUN_CONTROL_URL",
            help="Control API of a running scenario: trainer console and session record.",
        ),
    ] = None,
) -> None:
    """Serve the live dashboards of the MES at --mes-url (Plant, Line, Job orders, Quality,
    Genealogy, Scenario report; operator Terminal and Supervisor/QA for people who log in;
    the Trainer console beside a scenario run) until Ctrl-C."""
    from dashboards.app import serve
    from dashboards.session import Credentials

    if user is not None and password is None:
        typer.echo("--user needs --password (or MESTWIN_DASHBOARD_PASSWORD)", err=True)
        raise typer.Exit(2)
    if not mes_url.startswith(("http://", "https://")):
        typer.echo(f"--mes-url must be an http(s) URL, got {mes_url!r}", err=True)
        raise typer.Exit(2)
    import os

    from dashboards.run_control import RunControlClient

    credentials = Credentials(user, password) if user is not None and password else None
    control = None
    if run_control_url:
        control = RunControlClient(
            run_control_url,
            os.environ.get("MESTWIN_RUN_CONTROL_TOKEN", ""),
            os.environ.get("MESTWIN_TRAINER_PASSWORD", ""),
        )
    try:
        handle = serve(
            mes_url.rstrip("/"),
            port,
            host=host,
            credentials=credentials,
            reports=report or [],
            block=False,
            control=control,
            act_at_plant_time=act_at_plant_time,
        )
    except OSError as exc:
        typer.echo(f"cannot serve on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"dashboards at {handle.url} (MES {mes_url}); Ctrl-C to stop")
    try:
        handle.thread.join()
    except KeyboardInterrupt:
        typer.echo("stopping")
    finally:
        handle.stop()


def bench_dashboards(
    repeats: Annotated[int, typer.Option(min=1, help="repeats per figure (median)")] = 5,
    mes: Annotated[bool, typer.Option(help="also time requests against a real MES")] = True,
    browser: Annotated[bool, typer.Option(help="also time the Plant page in Chromium")] = True,
) -> None:
    """Page build and request times for the reference plant (10 x 20 work units) and a day
    of data; target: every page renders in under 2 s. Prints Markdown (``make bench``
    puts it in docs/BENCHMARKS.md)."""
    from dashboards.bench import run

    typer.echo(run(repeats, with_mes=mes, with_browser=browser))


def register(groups: CommandGroups) -> None:
    """Add ``mestwin dashboard`` and ``mestwin bench dashboards`` to the app."""
    groups.root.command("dashboard")(dashboard)
    groups.bench.command("dashboards")(bench_dashboards)
