"""The MES's view from two scrapes, histogram quantiles, and the BENCHMARKS.md writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.bench.result import (
    BenchResult,
    Figure,
    apply_summary,
    machine_kind,
    machine_section,
    machine_sections,
    ratio_in,
    write_benchmarks_md,
)
from loadtests.mes_metrics import mes_view, parse, quantile

H = "mestwin_http_request_duration_seconds"


def _route(status: str, le01: int, le1: int, total: int, seconds: float) -> str:
    labels = f'method="POST",route="/r/{{code}}",status="{status}"'
    return "\n".join(
        [
            f'{H}_bucket{{le="0.01",{labels}}} {le01}',
            f'{H}_bucket{{le="0.1",{labels}}} {le1}',
            f'{H}_bucket{{le="+Inf",{labels}}} {total}',
            f"{H}_count{{{labels}}} {total}",
            f"{H}_sum{{{labels}}} {seconds}",
        ]
    )


BEFORE = "\n".join(
    [
        f"# TYPE {H} histogram",
        _route("200", 10, 10, 10, 0.05),
        "# TYPE mestwin_ingest_events counter",
        'mestwin_ingest_events_total{outcome="accepted"} 100',
        "",
    ]
)
AFTER = "\n".join(
    [
        f"# TYPE {H} histogram",
        _route("200", 60, 110, 110, 3.05),
        _route("409", 5, 5, 5, 0.01),
        "# TYPE mestwin_ingest_events counter",
        'mestwin_ingest_events_total{outcome="accepted"} 1100',
        "# TYPE mestwin_open_holds gauge",
        'mestwin_open_holds{object="material_lot"} 3',
        "",
    ]
)


def test_quantile_interpolates_inside_the_bucket_of_the_rank() -> None:
    buckets = [(0.01, 50.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.75, buckets) == pytest.approx(0.055)
    assert quantile(0.5, []) is None


def test_mes_view_is_the_difference_between_two_scrapes() -> None:
    view = mes_view(parse(BEFORE, at=100.0), parse(AFTER, at=110.0))
    assert view.seconds == 10
    (route,) = view.routes
    assert route.route == "/r/{code}"
    assert route.requests == 105
    assert route.errors == 5
    assert route.mean_ms == pytest.approx(1000 * 3.01 / 105)
    assert view.ingest_accepted == 1000
    assert view.ingest_rate == 100
    assert view.open_holds == {"material_lot": 3}


def test_benchmarks_md_is_regenerated_from_every_result(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nstale figures of an old run\n", encoding="utf-8")
    results = [
        BenchResult(
            name="bench ingest (PostgreSQL)",
            command="mestwin bench ingest",
            product=Figure("ingest", 25_000, "events/s"),
            ceiling=Figure("bare", 50_000, "rows/s"),
            target=">= 0.3 of bare",
            target_met=True,
        ),
        BenchResult(
            name="bench sim",
            command="mestwin bench sim",
            product=None,
            ceiling=None,
            output="engine 1 events/s\nratio: 0.42\n",
            markdown="## Twin engine\n\nits own section",
        ),
        BenchResult(
            name="bench opcua",
            command="mestwin bench opcua",
            product=None,
            ceiling=None,
            error="did not finish within 240 s",
        ),
    ]
    write_benchmarks_md(path, results, elapsed_s=300)
    text = path.read_text(encoding="utf-8")
    assert "stale figures" not in text
    assert "| bench ingest (PostgreSQL) | 25,000 events/s | 50,000 rows/s | 0.50 |" in text
    assert "| bench sim |  |  | 0.42 |" in text
    assert "## Twin engine\n\nits own section" in text
    assert "did not finish within 240 s" in text
    assert "- cpu:" in text


def test_latency_ratio_is_ceiling_over_product() -> None:
    result = BenchResult(
        name="api",
        command="x",
        product=Figure("mes p99", 100, "ms", lower_better=True),
        ceiling=Figure("bare p99", 50, "ms", lower_better=True),
    )
    assert result.ratio == 0.5
    assert ratio_in("a\nratio: 0.3\nratio: 0.25\n") == 0.25


def test_benchmarks_md_keeps_other_machines_sections(tmp_path: Path) -> None:
    """A run rewrites its own machine's section only (issue 20: one section per kind of
    machine, so that figures of several machines stand side by side)."""
    path = tmp_path / "BENCHMARKS.md"
    other = machine_section("Other CPU, 4 cores", "old figures of another machine")
    path.write_text(f"# Benchmarks\n\n{other}\n", encoding="utf-8")
    run = BenchResult(name="bench x", command="mestwin bench x", product=None, ceiling=None)
    for output in ("first run\nratio: 0.1\n", "second run\nratio: 0.2\n"):
        run.output = output
        write_benchmarks_md(path, [run], elapsed_s=60, load="load 1.0.")
    text = path.read_text(encoding="utf-8")
    sections = machine_sections(text)
    assert set(sections) == {"Other CPU, 4 cores", machine_kind()}
    assert "old figures of another machine" in sections["Other CPU, 4 cores"]
    mine = sections[machine_kind()]
    assert f"## {machine_kind()}" in mine and "load 1.0." in mine
    assert "second run" in mine and "first run" not in text
    assert "### bench x" in mine


def test_a_benchmark_summary_line_fills_its_row_of_the_table(tmp_path: Path) -> None:
    """Another part's benchmark states product, ceiling, ratio and target in one line
    (``twin.bench_summary``); the table shows them, readers never see the line."""
    from twin.bench_summary import figure, summary_line

    line = summary_line(
        figure("product end to end", 47_839, "tag changes/s"),
        figure("fast-path pipe", 128_142, "tag changes/s"),
        0.3733,
        ">= 0.5 of the fast-path pipe",
        False,
    )
    result = BenchResult(name="bench opcua", command="mestwin bench opcua", product=None,
                         ceiling=None, output=f"steps...\n{line}\nratio: 0.37\n")  # fmt: skip
    apply_summary(result, result.output)
    assert "summary:" not in result.output and "ratio: 0.37" in result.output
    path = tmp_path / "BENCHMARKS.md"
    write_benchmarks_md(path, [result], elapsed_s=60)
    row = "| bench opcua | 47,839 tag changes/s | 128,142 tag changes/s | 0.37 | "
    assert row + ">= 0.5 of the fast-path pipe (MISSED) |" in path.read_text(encoding="utf-8")
    latency = BenchResult(name="bench dashboards", command="x", product=None, ceiling=None)
    page = figure("Plant page", 28.3, "ms", lower_better=True)
    bare = figure("bare GET", 12.8, "ms", lower_better=True)
    apply_summary(latency, summary_line(page, bare, None, "every page < 2 s", True))
    assert latency.ratio == pytest.approx(12.8 / 28.3) and latency.target_met is True
    with pytest.raises(ValueError, match="summary line is not JSON"):
        apply_summary(latency, "summary: {not json")


def test_the_dashboards_benchmark_states_its_row_for_the_table() -> None:
    """``bench dashboards``' summary line: the Plant page beside one bare read, judged on
    the slowest page (what its console output says)."""
    from dashboards.bench import Timing, _summary

    plant, bare = Timing("Plant page", 0.0283, 0.05), Timing("bare GET", 0.0128, 0.02)
    slowest = Timing("Line, cold", 2.5, 3.0)
    result = BenchResult(name="bench dashboards", command="x", product=None, ceiling=None)
    apply_summary(result, _summary(slowest, (plant, bare)))
    assert result.product is not None and result.product.text() == "28.3 ms"
    assert result.ratio == pytest.approx(12.8 / 28.3)
    assert result.target_met is False and "Line, cold" in result.target
