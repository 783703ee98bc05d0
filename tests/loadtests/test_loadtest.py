"""``mestwin loadtest`` end to end against a real MES for a few seconds, and its exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from support import postgres_url, require
from typer.testing import CliRunner

import loadtests.loadtest
from loadtests.bench.databases import throwaway_postgres
from loadtests.config import DEFAULT_PROFILE, load_profile
from loadtests.loadtest import LoadTestOptions, parse_duration, run_loadtest

EVERY_USER_KIND = (
    "operator: start operation",
    "operator: consume lot",
    "operator: report counts",
    "supervisor: create job order",
    "quality: material lot",
    "erp: import schedule",
    "dashboard: job orders",
    "connector: ingest batch",
)


@contextmanager
def _database(backend: str) -> Iterator[str | None]:
    """None: the embedded SQLite default of `mestwin loadtest`; else a throwaway PG db."""
    if backend == "sqlite":
        yield None
        return
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres(postgres_url(), prefix="mestwin_test_loadtest") as url:
        yield url


ON_POSTGRES = pytest.param("postgresql", marks=pytest.mark.postgres)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", ON_POSTGRES])
def test_locustfile_drives_every_user_kind_against_a_real_mes(backend: str, tmp_path: Path) -> None:
    # Quick pace and relaxed latency objectives: this is a smoke test of behaviour on a
    # shared CI machine, not a measurement; the verdict logic has its own tests.
    data = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    for user in data["users"].values():
        user["pace_seconds"] = 0.2
    data["users"]["connector"]["batch_events"] = 50
    data["slo"].update(p95_ms=60_000, p99_ms=60_000, requests={})
    data["seed"].update(work_units_per_class=5, operators=10)
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(data), encoding="utf-8")
    with _database(backend) as database_url:
        options = LoadTestOptions(
            database_url=database_url,
            users=17,  # the profile's weights sum to 17: one user of each kind at least
            spawn_rate=17,
            duration_s=10,  # every user kind must get past its on_start on a busy box
            out_dir=tmp_path / "run",
            mes_workers=1,
            profile=profile,
        )
        passed = run_loadtest(options, Console(width=120, quiet=True))
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert passed, report["slo"]
    locust = report["locust"]
    for name in EVERY_USER_KIND:
        assert locust[name]["requests"] > 0, name
        assert locust[name]["failures"] == 0, name
    # The MES's own view: the ingest it counted is what the connector users sent.
    batch_events = load_profile(profile).users.connector.batch_events
    assert report["mes"]["ingest_accepted"] >= batch_events
    assert report["mes"]["spool_depth"]
    assert (tmp_path / "run" / "locust.html").exists()
    assert (tmp_path / "run" / "locust_stats.csv").exists()
    assert (tmp_path / "run" / "report.md").read_text(encoding="utf-8").startswith("# Load test")


def test_loadtest_command_exits_non_zero_when_an_slo_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mestwin.cli import build_app

    monkeypatch.setattr(loadtests.loadtest, "run_loadtest", lambda options, console: False)
    result = CliRunner().invoke(
        build_app(), ["loadtest", "--duration", "5s", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "SLO failed" in result.output


def test_loadtest_command_refuses_a_bad_duration(tmp_path: Path) -> None:
    from mestwin.cli import build_app

    result = CliRunner().invoke(build_app(), ["loadtest", "--duration", "soon"])
    assert result.exit_code == 2
    assert "duration" in result.output


def test_durations_parse_in_seconds() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("2m") == 120
    assert parse_duration("1.5h") == 5400
    assert parse_duration("30") == 30
    with pytest.raises(ValueError, match="expected"):
        parse_duration("2 minutes")
