"""The OPC UA fast paths pinned and guarded (issue 18): one declared range of asyncua
versions (``fastpaths.ASYNCUA_CHECKED``), the same in ``pyproject.toml``, the installed
asyncua inside it, both ends gated on it, and the benchmarks saying when they are off.
Runtime: well under a second (no server, no benchmark: the version is monkeypatched)."""

from __future__ import annotations

import gc
import logging
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

import fastpaths
from loadtests.bench.result import machine_description
from mes_core.connectors.opcua import publish
from mestwin.cli import build_app
from twin.opcua import bench_raw, fastpath

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_asyncua_is_one_the_fast_paths_were_checked_against() -> None:
    installed = fastpaths.asyncua_version()
    assert fastpaths.asyncua_checked(), (
        f"asyncua {installed} is outside the versions the OPC UA fast paths were checked "
        f"against ({', '.join(fastpaths.ASYNCUA_CHECKED)}): they are off and the twin's "
        "server and the connector lose most of their speed. Run tests/opcua on it, then "
        "add it to fastpaths.ASYNCUA_CHECKED and pyproject.toml, or install a checked one."
    )


def test_pyproject_admits_exactly_the_checked_asyncua_versions() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    asyncua = [d for d in pyproject["project"]["dependencies"] if re.match(r"asyncua\b", d.lower())]
    (requirement,) = asyncua
    # Exactly the checked versions: today one, pinned with ``==`` (a second checked
    # version needs a specifier admitting both and nothing else, and this test with it).
    assert re.fullmatch(r"asyncua\s*==\s*[\w.]+", requirement), requirement
    assert tuple(re.findall(r"==\s*([\w.]+)", requirement)) == fastpaths.ASYNCUA_CHECKED


def test_the_gate_and_the_status_line(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = fastpaths.ASYNCUA_CHECKED[0]
    assert fastpaths.asyncua_checked(checked)
    assert not fastpaths.asyncua_checked("2.1.1")
    assert fastpaths.fast_paths_status(checked).startswith("fast paths: on")
    off = fastpaths.fast_paths_status("2.2.0")
    assert off.startswith("fast paths: OFF") and "asyncua 2.2.0" in off
    assert all(name in off for name in fastpaths.FAST_PATHS)
    monkeypatch.setattr(fastpaths, "asyncua_version", lambda: "2.2.0")
    assert not fastpaths.asyncua_checked()
    assert fastpaths.fast_paths_status() == off


def test_both_ends_take_the_one_gate_and_log_when_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    was = fastpath.lean_notifications_active()
    monkeypatch.setattr(fastpaths, "asyncua_version", lambda: "2.2.0")
    try:
        fastpath.plain_notifications()
        with caplog.at_level(logging.WARNING):
            assert not fastpath.lean_notifications()
            assert not publish.lean_publish(SimpleNamespace())
        said = [r.getMessage() for r in caplog.records]
        assert any("asyncua 2.2.0: lean data change notifications not installed" in m for m in said)
        assert any("asyncua 2.2.0: lean publish decoding not installed" in m for m in said)
    finally:
        monkeypatch.undo()
        if was:
            fastpath.lean_notifications()


def test_one_copy_of_fewer_collections_for_both_ends() -> None:
    from mes_core import gc_tuning
    from mes_core.connectors.opcua import connector
    from twin.opcua import runtime

    assert connector.fewer_collections is fastpaths.fewer_collections
    assert runtime.fewer_collections is fastpaths.fewer_collections
    assert gc_tuning.GC_THRESHOLDS is fastpaths.GC_THRESHOLDS
    assert not hasattr(fastpath, "fewer_collections")
    before = gc.get_threshold()
    with fastpaths.fewer_collections():
        assert all(a >= b for a, b in zip(gc.get_threshold(), fastpaths.GC_THRESHOLDS, strict=True))
    assert gc.get_threshold() == before
    # The connector collects less often still (its young objects wait for a post).
    assert all(
        a >= b
        for a, b in zip(connector.COLLECTOR_GC_THRESHOLDS, fastpaths.GC_THRESHOLDS, strict=True)
    )


def test_the_benchmarks_say_when_the_fast_paths_are_off(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_ceiling(**_: Any) -> Any:
        return SimpleNamespace(steps=[], ceiling_per_s=0.0)

    monkeypatch.setattr(bench_raw, "run_raw_ceiling", no_ceiling)
    monkeypatch.setattr(fastpaths, "asyncua_version", lambda: "2.2.0")
    result = CliRunner().invoke(build_app(), ["bench", "opcua", "--raw-only"])
    assert result.exit_code == 0, result.output
    assert "fast paths: OFF - asyncua 2.2.0" in result.output
    assert dict(machine_description())["OPC UA"].startswith("fast paths: OFF - asyncua 2.2.0")
    monkeypatch.undo()
    monkeypatch.setattr(bench_raw, "run_raw_ceiling", no_ceiling)
    result = CliRunner().invoke(build_app(), ["bench", "opcua", "--raw-only"])
    assert "fast paths: on (asyncua " in result.output
