"""``mestwin loadtest``: seed the MES, run Locust headless, read both views, judge SLOs."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from loadtests.config import DEFAULT_PROFILE, PROFILE_ENV, load_profile
from loadtests.mes import running_mes
from loadtests.mes_metrics import MesView, Scrape, mes_view, scrape
from loadtests.report import print_report, write_report
from loadtests.runner import run_locust
from loadtests.seed import SEED_ENV, SeedManifest, seed_mes
from loadtests.slo import evaluate

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``2m``, ``1.5h`` or a bare number of seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r}: expected a number with s, m or h, e.g. 2m")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


@dataclass(frozen=True)
class LoadTestOptions:
    users: int
    spawn_rate: float
    duration_s: float
    out_dir: Path
    mes_url: str | None = None
    database_url: str | None = None
    mes_workers: int = 2
    locust_workers: int = 0
    profile: Path = DEFAULT_PROFILE
    admin_user: str = "admin"
    admin_password: str = "admin"
    seed_file: Path | None = None


@contextmanager
def _mes(options: LoadTestOptions, console: Console) -> Iterator[str]:
    if options.mes_url:
        yield options.mes_url.rstrip("/")
        return
    database = options.database_url or f"sqlite:///{(options.out_dir / 'mes.db').resolve()}"
    console.print(f"starting the MES ({options.mes_workers} uvicorn workers) on {database}")
    with running_mes(
        database,
        admin_password=options.admin_password,
        workers=options.mes_workers,
        log_dir=options.out_dir,
    ) as url:
        yield url


def _scrape(url: str, console: Console) -> Scrape | None:
    """The MES's /metrics now, or None (said on the console) when it has none: a load test
    of another MES still runs, with Locust's view only."""
    try:
        return scrape(url, time.time())
    except httpx.HTTPError as exc:
        console.print(f"[yellow]no MES metrics at {url}/metrics ({exc}); Locust's view only")
        return None


def run_loadtest(options: LoadTestOptions, console: Console) -> bool:
    """Run the whole load test; True when every SLO held."""
    profile = load_profile(options.profile)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    with _mes(options, console) as url:
        if options.seed_file:
            manifest = SeedManifest.read(options.seed_file)
        else:
            console.print("seeding master data through mes_core.client")
            manifest = seed_mes(
                url,
                profile.seed,
                admin_user=options.admin_user,
                admin_password=options.admin_password,
            )
        seed_path = (options.out_dir / "seed.json").resolve()
        if options.seed_file is None or options.seed_file.resolve() != seed_path:
            manifest.write(seed_path)
        before = _scrape(url, console)
        console.print(
            f"Locust: {options.users} users at {options.spawn_rate}/s for "
            f"{options.duration_s:.0f} s against {url}"
            + (f", {options.locust_workers} workers" if options.locust_workers else "")
        )
        run = run_locust(
            host=url,
            users=options.users,
            spawn_rate=options.spawn_rate,
            run_time_s=options.duration_s,
            out_dir=options.out_dir,
            env={SEED_ENV: str(seed_path), PROFILE_ENV: str(options.profile.resolve())},
            workers=options.locust_workers,
            reset_stats=True,
        )
        after = _scrape(url, console) if before is not None else None
        view: MesView | None = None
        if before is not None and after is not None:
            view = mes_view(before, after)
    checks = evaluate(run.stats, profile.slo)
    print_report(console, run.stats, view, checks)
    report = write_report(
        options.out_dir,
        settings={
            "users": options.users,
            "spawn_rate": options.spawn_rate,
            "duration_s": options.duration_s,
            "mes": options.mes_url or "started here",
            "mes_workers": options.mes_workers if not options.mes_url else "n/a",
            "locust_workers": options.locust_workers,
            "profile": str(options.profile),
        },
        stats=run.stats,
        view=view,
        checks=checks,
    )
    console.print(f"report: {report} (Locust HTML: {run.html})")
    return all(c.passed for c in checks)


__all__ = ["LoadTestOptions", "parse_duration", "run_loadtest"]
