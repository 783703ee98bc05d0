"""``mestwin loadtest`` works from any folder (issue 21, item 1): the report folder may be
relative to where the command runs, while Locust runs inside it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from loadtests import runner

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Max Response Time,Requests/s,50%,95%,99%"
)


def _fake_locust(args: list[str], *, cwd: Path, **_: Any) -> subprocess.CompletedProcess[bytes]:
    # What Locust does with --csv: a relative prefix is relative to its own working folder.
    prefix = Path(args[args.index("--csv") + 1])
    stats = (prefix if prefix.is_absolute() else Path(cwd) / prefix).with_name(
        prefix.name + "_stats.csv"
    )
    stats.parent.mkdir(parents=True, exist_ok=True)
    stats.write_text(f"{HEADER}\n,Aggregated,10,0,5,5,9,2.0,5,8,9\n")
    return subprocess.CompletedProcess(args, 0)


def test_a_relative_report_folder_is_found_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "x"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(runner.subprocess, "run", _fake_locust)
    run = runner.run_locust(
        host="http://127.0.0.1:1",
        users=1,
        spawn_rate=1,
        run_time_s=1,
        out_dir=Path("reports") / "loadtest",
    )
    assert run.stats["Aggregated"].requests == 10
    assert run.csv_prefix == elsewhere / "reports" / "loadtest" / "locust"
