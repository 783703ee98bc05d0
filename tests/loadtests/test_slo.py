"""SLO judgement of a Locust run, and the load profile's validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.config import ProfileError, RequestSlo, Slo, load_profile
from loadtests.slo import AGGREGATED, RequestStats, StatsError, evaluate, read_stats

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
)


def _stats(requests: int, failures: int, p95: float, p99: float, rps: float) -> RequestStats:
    return RequestStats("", AGGREGATED, requests, failures, 10, 12, 90, rps, 10, p95, p99)


def test_slo_passes_when_every_objective_holds() -> None:
    slo = Slo(max_error_ratio=0.01, p95_ms=100, p99_ms=200, min_throughput_rps=50)
    checks = evaluate({AGGREGATED: _stats(1000, 5, 80, 150, 60)}, slo)
    assert [c.objective for c in checks] == [
        "error ratio",
        "p95 ms",
        "p99 ms",
        "throughput req/s (minimum)",
    ]
    assert all(c.passed for c in checks)


@pytest.mark.parametrize(
    ("stats", "failed"),
    [
        (_stats(1000, 20, 80, 150, 60), "error ratio"),
        (_stats(1000, 0, 120, 150, 60), "p95 ms"),
        (_stats(1000, 0, 80, 250, 60), "p99 ms"),
        (_stats(1000, 0, 80, 150, 40), "throughput req/s (minimum)"),
    ],
)
def test_slo_fails_naming_the_objective_that_broke(stats: RequestStats, failed: str) -> None:
    slo = Slo(max_error_ratio=0.01, p95_ms=100, p99_ms=200, min_throughput_rps=50)
    checks = evaluate({AGGREGATED: stats}, slo)
    assert [c.objective for c in checks if not c.passed] == [failed]


def test_slo_fails_a_run_that_made_no_request() -> None:
    checks = evaluate({AGGREGATED: _stats(0, 0, 0, 0, 0)}, Slo())
    assert not checks[0].passed


def test_slo_per_request_limits_and_a_request_that_never_ran() -> None:
    row = RequestStats("POST", "operator: start operation", 10, 0, 5, 5, 9, 1, 5, 300, 600)
    slo = Slo(
        requests={
            "operator: start operation": RequestSlo(p99_ms=500),
            "qa: record result": RequestSlo(p95_ms=100),
        }
    )
    checks = {c.objective: c for c in evaluate({AGGREGATED: row, row.name: row}, slo)}
    assert not checks["operator: start operation: p99 ms"].passed
    assert not checks["qa: record result: requests made"].passed


def test_read_stats_reads_a_locust_csv(tmp_path: Path) -> None:
    path = tmp_path / "run_stats.csv"
    path.write_text(
        HEADER
        + "GET,root,57,1,4,4.5,1.4,14.0,497.0,29.9,0.5,4,5,6,6,8,8,10,14,14,14,14\n"
        + ",Aggregated,57,1,4,4.5,1.4,14.0,497.0,29.9,0.5,4,5,6,6,8,9,10,15,14,14,14\n",
        encoding="utf-8",
    )
    stats = read_stats(path)
    assert stats["root"].requests == 57
    assert stats[AGGREGATED].p95_ms == 9
    assert stats[AGGREGATED].p99_ms == 15
    assert stats[AGGREGATED].error_ratio == pytest.approx(1 / 57)


def test_read_stats_refuses_a_file_that_is_not_locust_stats(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(StatsError, match="column"):
        read_stats(path)


def test_shipped_profile_is_valid_and_covers_every_user_kind() -> None:
    profile = load_profile()
    assert profile.users.operator.weight > 0
    assert profile.slo.max_error_ratio <= 0.05


def test_profile_error_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "users:\n  operator: {weight: -1, pace_seconds: 1}\n"
        "  quality: {weight: 1, pace_seconds: 1}\n  erp: {weight: 1, pace_seconds: 1}\n"
        "  dashboard: {weight: 1, pace_seconds: 1}\n  connector: {weight: 1, pace_seconds: 1}\n",
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match=r"users\.operator\.weight"):
        load_profile(path)


def test_simulated_erp_schedules_are_valid_b2mml_for_the_mes() -> None:
    from loadtests.config import Seed
    from loadtests.erp_schedule import schedule_document
    from loadtests.seed import build_master_data
    from mes_core.erp.schedule import parse_schedule

    _, manifest = build_master_data("E", Seed(work_units_per_class=1, operators=1), "pw")
    document, codes = schedule_document(manifest, 3)
    schedule = parse_schedule(document)  # the MES's own parser and XSD validation
    assert [order.number for order in schedule.job_orders] == codes
    assert {order.product for order in schedule.job_orders} == {manifest.product}
    assert {order.operations_definition for order in schedule.job_orders} == {manifest.routing}
