"""``mestwin run`` (a scenario run) and ``mestwin demo`` (the clean bottling scenario)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups


def _speed(value: str | None) -> float | str | None:
    if value is None or value == "max":
        return value
    try:
        speed = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give a number > 0 or 'max'") from None
    if speed <= 0:
        raise typer.BadParameter(f"{value!r}: give a number > 0 or 'max'")
    return speed


def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    report_dir: Annotated[
        Path | None, typer.Option(help="folder for report.json/.html and junit.xml")
    ] = None,
    mes_url: Annotated[
        str | None, typer.Option(help="use this running MES instead of starting one")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="database of the MES the run starts (default: SQLite)")
    ] = None,
    speed: Annotated[
        str | None, typer.Option(help="simulated seconds per wall second, or 'max'")
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="override the scenario's duration, e.g. 2h")
    ] = None,
    order_scale: Annotated[
        float, typer.Option(min=0.0001, help="multiply every order quantity (short runs)")
    ] = 1.0,
    progress: Annotated[bool, typer.Option(help="show the progress bar")] = True,
    dashboard: Annotated[
        bool, typer.Option(help="open the live dashboards beside the run (for a trainer)")
    ] = False,
    dashboard_port: Annotated[
        int, typer.Option(min=0, max=65535, help="port of --dashboard (0: any free one)")
    ] = 8050,
    dashboard_host: Annotated[
        str,
        typer.Option(
            help="interface --dashboard listens on (0.0.0.0: trainees' browsers on other "
            "machines reach the terminal pages; the MES itself stays on loopback)"
        ),
    ] = "127.0.0.1",
    signing_key: Annotated[
        Path | None,
        typer.Option(help="Ed25519 private key (PEM) sealing the report (default: per run)"),
    ] = None,
    adapter: Annotated[
        str | None,
        typer.Option(
            help="run against this system-under-test adapter instead of the "
            "scenario's (its settings then come from the environment's defaults)"
        ),
    ] = None,
    link: Annotated[
        str | None,
        typer.Option(help="override the scenario's link: opcua, opcua-external or direct"),
    ] = None,
    pdf: Annotated[
        bool, typer.Option(help="also print report.pdf (headless Chromium) for sign-off")
    ] = False,
) -> None:
    """Run a scenario against the MES; exit 0 when every expectation holds, 1 when one
    fails, 2 when the scenario file is broken, 3 when none failed but the run checked
    nothing (no expectations) or could not check one (verdict NOT CHECKED)."""
    code = run_command(
        scenario,
        report_dir,
        mes_url,
        database_url,
        speed,
        duration,
        progress,
        order_scale,
        dashboard_port if dashboard else None,
        signing_key,
        adapter=adapter,
        link=link,
        pdf=pdf,
        dashboard_host=dashboard_host,
    )
    raise typer.Exit(code)


VERDICT_MARKS = {
    "passed": "[green]PASSED[/]",
    "failed": "[red]FAILED[/]",
    "not_checked": "[yellow]NOT CHECKED[/]",
}


def run_command(
    scenario: Path,
    report_dir: Path | None,
    mes_url: str | None,
    database_url: str | None,
    speed: str | None,
    duration: str | None,
    progress: bool,
    order_scale: float = 1.0,
    dashboard_port: int | None = None,
    signing_key: Path | None = None,
    *,
    adapter: str | None = None,
    link: str | None = None,
    pdf: bool = False,
    dashboard_host: str = "127.0.0.1",
) -> int:
    """The body of ``mestwin run``; returns the exit code."""
    from rich.console import Console

    from plant_models.durations import parse_duration
    from twin.scenario.evidence import EvidenceError, load_signing_key, seal
    from twin.scenario.review_pdf import PdfError, find_chromium, write_review_pdf
    from twin.scenario.runner import MesStartError, RunOptions, ScenarioError, run_scenario

    console = Console(stderr=True, soft_wrap=True)
    folder = report_dir or Path("reports") / scenario.stem
    # A PDF left from an earlier run into this folder would be sealed with this run's
    # records while stating another run's verdict.
    (folder / "report.pdf").unlink(missing_ok=True)
    if signing_key is not None:
        try:  # refused before the run, not after it
            load_signing_key(signing_key)
        except EvidenceError as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False)
            return 2
    if pdf and find_chromium() is None:
        console.print("[red]error:[/] --pdf needs Chromium (Debian package chromium)")
        return 2
    try:
        options = RunOptions(
            scenario=scenario,
            report_dir=folder,
            mes_url=mes_url,
            database_url=database_url,
            speed=_speed(speed),  # type: ignore[arg-type]
            duration=parse_duration(duration) if duration else None,
            progress=progress,
            order_scale=order_scale,
            dashboard_port=dashboard_port,
            dashboard_host=dashboard_host,
            signing_key=signing_key,
            adapter=adapter,
            link=link,
        )
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        result = run_scenario(options)
    except ScenarioError as exc:
        console.print(f"[red]scenario {scenario} cannot run:[/]")
        for problem in exc.problems:
            console.print(f"  {problem}", markup=False, highlight=False)
        return 2
    except MesStartError as exc:
        console.print("[red]error:[/] the run could not start", highlight=False)
        console.print(str(exc), markup=False, highlight=False)
        return 1
    except Terminated:
        console.print("[yellow]terminated: the MES and the twin were stopped[/]")
        return 143
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: the MES and the twin were stopped[/]")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    report = result.report
    marks = {"passed": "[green]PASS[/]", "not_checked": "[yellow]NOT CHECKED[/]"}
    for exp in report.expectations:
        mark = marks.get(exp.status or "", "[red]FAIL[/]")
        console.print(f"{mark} {exp.name}: {exp.detail}", highlight=False)
    verdict = VERDICT_MARKS[report.verdict or "failed"]
    console.print(
        f"scenario {report.scenario.name}: {verdict} ({report.verdict_reason}) in "
        f"{report.wall_time_s:.1f} s ({report.sim_time_s / 3600:.2f} h simulated)",
        highlight=False,
    )
    console.print(f"report: {(result.report_dir / 'report.html').resolve()}")
    if pdf:
        try:  # the runner sealed the folder: sealed again with the PDF in it
            console.print(f"PDF: {write_review_pdf(result.report_dir).resolve()}")
            seal(result.report_dir, signing_key)
        except (PdfError, EvidenceError) as exc:
            console.print(f"[red]error: no report.pdf:[/] {exc}", highlight=False)
    console.print(
        f"sealed: {(result.report_dir / 'manifest.json').resolve()} "
        f"(check with: mestwin evidence verify {result.report_dir})"
    )
    return result.exit_code


DEMO_SCENARIO = "clean_bottling_day.yaml"
DEMO_DURATION = "8h"
DEMO_ORDER_SCALE = 0.5


def demo(
    report_dir: Annotated[Path, typer.Option(help="folder for the report")] = Path("reports/demo"),
    progress: Annotated[bool, typer.Option(help="show the progress bar")] = True,
) -> None:
    """The main job in about a minute: the clean bottling scenario (its first shift, half
    the order quantities) against a fresh MES on SQLite; prints where the report is."""
    from plant_models.scenario import SCENARIOS_DIR

    code = run_command(
        SCENARIOS_DIR / DEMO_SCENARIO,
        report_dir,
        None,
        None,
        None,
        DEMO_DURATION,
        progress,
        DEMO_ORDER_SCALE,
    )
    raise typer.Exit(code)


def register(groups: CommandGroups) -> None:
    """Add ``mestwin run`` and ``mestwin demo`` to the ``mestwin`` app."""
    groups.root.command("run")(run)
    groups.root.command("demo")(demo)


class Terminated(KeyboardInterrupt):
    """SIGTERM reached ``mestwin run``: unwinds like Ctrl-C, so the MES, the connector and
    the twin it started are stopped, not left running."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated
