"""The load-test report: Locust's view and the MES's own view side by side, and the SLOs.

Written as ``report.md`` (for people) and ``report.json`` (for a CI job) next to Locust's
CSV and HTML reports, and printed as rich tables.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loadtests.mes_metrics import MesView
from loadtests.slo import AGGREGATED, RequestStats, SloCheck


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def locust_table(stats: dict[str, RequestStats]) -> Table:
    table = Table(title="Locust (the load generator's view)")
    for column in ("request", "count", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for name, row in sorted(stats.items(), key=lambda item: (item[0] == AGGREGATED, item[0])):
        table.add_row(
            name,
            str(row.requests),
            str(row.failures),
            f"{row.rps:.1f}",
            _ms(row.p50_ms),
            _ms(row.p95_ms),
            _ms(row.p99_ms),
        )
    return table


def mes_table(view: MesView) -> Table:
    table = Table(title=f"MES /metrics (its own view, over {view.seconds:.0f} s)")
    for column in ("route", "count", "4xx/5xx", "mean ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "route" else "right")
    for route in view.routes:
        table.add_row(
            f"{route.method} {route.route}",
            f"{route.requests:.0f}",
            f"{route.errors:.0f}",
            f"{route.mean_ms:.1f}",
            _ms(route.p95_ms),
            _ms(route.p99_ms),
        )
    return table


def print_report(
    console: Console, stats: dict[str, RequestStats], view: MesView | None, checks: list[SloCheck]
) -> None:
    console.print(locust_table(stats))
    if view is not None:
        console.print(mes_table(view))
        for line in view.lines():
            console.print(line, markup=False, highlight=False)
    console.rule("service-level objectives")
    for check in checks:
        style = "green" if check.passed else "red bold"
        console.print(f"[{style}]{check.line()}[/{style}]")


def write_report(
    out_dir: Path,
    *,
    settings: dict[str, Any],
    stats: dict[str, RequestStats],
    view: MesView | None,
    checks: list[SloCheck],
) -> Path:
    """Write ``report.md`` and ``report.json`` into ``out_dir``; return the markdown path."""
    passed = all(c.passed for c in checks)
    lines = [
        "# Load test report",
        "",
        f"Verdict: **{'PASS' if passed else 'FAIL'}**",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        "",
        "Locust's CSV files and `locust.html` (its HTML report) are beside this file.",
        "",
        "## Service-level objectives",
        "",
        *[f"- {c.line()}" for c in checks],
        "",
        "## Locust (the load generator's view)",
        "",
        "| request | count | failures | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in sorted(stats.items(), key=lambda item: (item[0] == AGGREGATED, item[0])):
        lines.append(
            f"| {name} | {row.requests} | {row.failures} | {row.rps:.1f} | "
            f"{_ms(row.p50_ms)} | {_ms(row.p95_ms)} | {_ms(row.p99_ms)} |"
        )
    if view is not None:
        lines += [
            "",
            f"## The MES's own view (/metrics, over {view.seconds:.0f} s)",
            "",
            "Latency inside the app (from the first byte in to the last byte out), by route",
            "template; percentiles estimated from the histogram buckets.",
            "",
            "| route | count | 4xx/5xx | mean ms | p95 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for route in view.routes:
            lines.append(
                f"| {route.method} {route.route} | {route.requests:.0f} | {route.errors:.0f} | "
                f"{route.mean_ms:.1f} | {_ms(route.p95_ms)} | {_ms(route.p99_ms)} |"
            )
        lines += ["", *[f"- {line}" for line in view.lines()]]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out_dir / "report.json").write_text(
        json.dumps(
            {
                "passed": passed,
                "settings": settings,
                "slo": [asdict(c) for c in checks],
                "locust": {name: asdict(row) for name, row in stats.items()},
                "mes": None
                if view is None
                else {
                    **asdict(view),
                    "ingest_rate": view.ingest_rate,
                },
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return path
