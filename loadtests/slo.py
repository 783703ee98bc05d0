"""Read Locust's request statistics and judge them against the profile's SLOs.

Locust writes ``<prefix>_stats.csv`` with one row per request name and a final
``Aggregated`` row; response times are in milliseconds, percentiles in columns named
``50%`` ... ``100%``. The judgement is plain data in, plain data out, so that it can be
tested without running Locust.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from loadtests.config import Slo

AGGREGATED = "Aggregated"


@dataclass(frozen=True)
class RequestStats:
    """One row of Locust's stats CSV."""

    method: str
    name: str
    requests: int
    failures: int
    median_ms: float
    average_ms: float
    max_ms: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class SloCheck:
    """One objective: what was measured against which limit, and whether it held."""

    objective: str
    limit: float
    measured: float
    passed: bool

    def line(self) -> str:
        verdict = "ok  " if self.passed else "FAIL"
        return f"{verdict} {self.objective}: {self.measured:.4g} (limit {self.limit:.4g})"


class StatsError(ValueError):
    """Locust's stats file is missing or not in the expected format."""


def _number(row: dict[str, str], column: str, path: Path) -> float:
    raw = row.get(column)
    if raw is None:
        raise StatsError(f"{path}: column {column!r} missing (not a Locust stats CSV?)")
    if raw in ("", "N/A"):
        return 0.0
    try:
        return float(raw)
    except ValueError as exc:
        raise StatsError(f"{path}: {column!r} of {row.get('Name')!r} is {raw!r}") from exc


def read_stats(path: Path) -> dict[str, RequestStats]:
    """The rows of a Locust ``*_stats.csv`` by request name (``Aggregated`` included)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise StatsError(f"{path}: cannot read Locust stats: {exc}") from exc
    stats: dict[str, RequestStats] = {}
    for row in rows:
        name = row.get("Name") or ""
        stats[name] = RequestStats(
            method=row.get("Type") or "",
            name=name,
            requests=int(_number(row, "Request Count", path)),
            failures=int(_number(row, "Failure Count", path)),
            median_ms=_number(row, "Median Response Time", path),
            average_ms=_number(row, "Average Response Time", path),
            max_ms=_number(row, "Max Response Time", path),
            rps=_number(row, "Requests/s", path),
            p50_ms=_number(row, "50%", path),
            p95_ms=_number(row, "95%", path),
            p99_ms=_number(row, "99%", path),
        )
    if AGGREGATED not in stats:
        raise StatsError(f"{path}: no {AGGREGATED!r} row (did the run make any request?)")
    return stats


def evaluate(stats: dict[str, RequestStats], slo: Slo) -> list[SloCheck]:
    """Every objective of ``slo`` judged on ``stats``. A run without a single request fails
    the error-ratio objective: no evidence is not a pass."""
    total = stats[AGGREGATED]
    checks = [
        SloCheck(
            "error ratio",
            slo.max_error_ratio,
            total.error_ratio if total.requests else 1.0,
            total.requests > 0 and total.error_ratio <= slo.max_error_ratio,
        )
    ]
    if slo.p95_ms is not None:
        checks.append(SloCheck("p95 ms", slo.p95_ms, total.p95_ms, total.p95_ms <= slo.p95_ms))
    if slo.p99_ms is not None:
        checks.append(SloCheck("p99 ms", slo.p99_ms, total.p99_ms, total.p99_ms <= slo.p99_ms))
    if slo.min_throughput_rps is not None:
        checks.append(
            SloCheck(
                "throughput req/s (minimum)",
                slo.min_throughput_rps,
                total.rps,
                total.rps >= slo.min_throughput_rps,
            )
        )
    for name, limits in sorted(slo.requests.items()):
        row = stats.get(name)
        if row is None:
            # A named objective whose request never ran cannot be judged; that is a failure
            # of the run (a broken user class), not a pass.
            checks.append(SloCheck(f"{name}: requests made", 1, 0, False))
            continue
        if limits.p95_ms is not None:
            checks.append(
                SloCheck(f"{name}: p95 ms", limits.p95_ms, row.p95_ms, row.p95_ms <= limits.p95_ms)
            )
        if limits.p99_ms is not None:
            checks.append(
                SloCheck(f"{name}: p99 ms", limits.p99_ms, row.p99_ms, row.p99_ms <= limits.p99_ms)
            )
    return checks
