"""An experiment's results: JSON (everything, each replication's figures too), CSV (one row
per cell and KPI) and a self-contained HTML page (plotly.js inlined): one plot per KPI
against each parameter, the mean of every cell with its confidence interval, one trace per
combination of the other parameters' values."""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path
from typing import Any

from plant_models.durations import format_duration
from twin.experiment.run import CellResult, ExperimentResult
from twin.simulate import json_ready, write_json

ESTIMATE_FIELDS = ("mean", "half_width", "low", "high", "sd", "n")


def cell_dict(cell: CellResult, design: Any) -> dict[str, Any]:
    """One cell as JSON: its values, seeds, estimates and each replication's KPIs."""
    spec = design.spec
    key = "(replication,)" if spec.common_random_numbers else "(cell, replication)"
    return {
        "cell": cell.cell.index,
        "values": design.values(cell.cell),
        "labels": design.value_labels(cell.cell),
        "seed": {"entropy": spec.seed, "spawn_key": key},
        "kpis": {name: est.as_dict() for name, est in cell.kpis.items()},
        "runs": cell.runs,
    }


def as_dict(result: ExperimentResult) -> dict[str, Any]:
    design = result.design
    spec = design.spec
    return {
        "design": design.source,
        "plant": design.cells[0].model.plant.code,
        "until": spec.until,
        "warmup": spec.warmup,
        "replications": spec.replications,
        "seed": spec.seed,
        "common_random_numbers": spec.common_random_numbers,
        "confidence": spec.confidence,
        "parameters": [
            {
                "name": p.label,
                "path": p.path,
                "values": p.values,
                "labels": [p.value_label(i) for i in range(len(p.values))],
            }
            for p in design.parameters
        ],
        "run": {
            "scheduler": result.scheduler,
            "workers": result.workers,
            "wall_seconds": result.wall_seconds,
        },
        "cells": [cell_dict(c, design) for c in result.cells],
    }


def write_csv(path: Path, result: ExperimentResult) -> None:
    """One row per cell and KPI: cell, each parameter's value, KPI, estimate."""
    labels = [p.label for p in result.design.parameters]
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["cell", *labels, "kpi", *ESTIMATE_FIELDS, "confidence"])
        for cell in result.cells:
            shown = result.design.value_labels(cell.cell)
            for name, est in cell.kpis.items():
                row = est.as_dict()
                out.writerow(
                    [
                        cell.cell.index,
                        *(shown[label] for label in labels),
                        name,
                        *(_csv(row[f]) for f in ESTIMATE_FIELDS),
                        est.confidence,
                    ]
                )


def _csv(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def figures(result: ExperimentResult) -> list[tuple[str, Any]]:
    """``(KPI, figure)`` for every KPI x parameter."""
    import plotly.graph_objects as go

    design = result.design
    params = design.parameters
    kpis = list(result.cells[0].kpis) if result.cells else []
    out: list[tuple[str, Any]] = []
    for kpi in kpis:
        for p_index, param in enumerate(params):
            numeric = _numeric(param.values)
            traces: dict[str, list[CellResult]] = {}
            for cell in result.cells:
                others = ", ".join(
                    f"{q.label}={q.value_label(cell.cell.choice[i])}"
                    for i, q in enumerate(params)
                    if i != p_index
                )
                traces.setdefault(others or kpi, []).append(cell)
            fig = go.Figure()
            for name, cells in traces.items():
                cells = sorted(cells, key=lambda c: c.cell.choice[p_index])
                xs = [
                    param.values[c.cell.choice[p_index]]
                    if numeric
                    else param.value_label(c.cell.choice[p_index])
                    for c in cells
                ]
                ests = [c.kpis[kpi] for c in cells]
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=[json_ready(e.mean) for e in ests],
                        error_y={
                            "type": "data",
                            "array": [json_ready(e.half_width) for e in ests],
                            "visible": True,
                        },
                        mode="lines+markers",
                        name=name,
                    )
                )
            fig.update_layout(
                title=f"{kpi} against {param.label}",
                xaxis_title=param.label,
                yaxis_title=kpi,
                height=380 + 20 * len(traces) if len(traces) > 1 else 380,
                margin={"l": 60, "r": 20, "t": 50, "b": 50},
                showlegend=len(traces) > 1,
                legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0},
            )
            if not numeric:
                fig.update_xaxes(type="category")
            out.append((kpi, fig))
    return out


def page(result: ExperimentResult) -> str:
    """The HTML page: the design, then the plots (plotly.js inlined once, no network)."""
    spec = result.design.spec
    head = (
        f"<h1>Experiment {html.escape(result.design.source)}</h1>"
        f"<p>{len(result.cells)} cells x {spec.replications} replications of "
        f"{html.escape(result.design.cells[0].model.plant.code)}, "
        f"{format_duration(spec.until)} (warm-up {format_duration(spec.warmup)}), "
        f"seed {spec.seed}, "
        f"{spec.confidence:.0%} Student-t confidence intervals of the mean; "
        f"ran on {html.escape(result.scheduler)} ({result.workers} workers) in "
        f"{result.wall_seconds:.1f} s.</p><ul>"
        + "".join(
            f"<li>{html.escape(p.label)}: <code>{html.escape(p.path)}</code> = "
            + ", ".join(html.escape(p.value_label(i)) for i in range(len(p.values)))
            + "</li>"
            for p in result.design.parameters
        )
        + "</ul>"
    )
    plots = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0))
        for i, (_kpi, fig) in enumerate(figures(result))
    ]
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Experiment</title>'
        "<style>body{font-family:sans-serif;margin:2em}</style></head><body>"
        + head
        + "".join(plots)
        + "</body></html>"
    )


def write_all(folder: Path, result: ExperimentResult) -> dict[str, Path]:
    """``results.json``, ``results.csv`` and ``report.html`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "results.json",
        "csv": folder / "results.csv",
        "html": folder / "report.html",
    }
    write_json(paths["json"], as_dict(result))
    write_csv(paths["csv"], result)
    paths["html"].write_text(page(result), encoding="utf-8")
    return paths
