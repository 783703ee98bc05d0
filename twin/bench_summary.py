"""The summary line of the twin's benchmarks (``bench sim``, ``bench opcua``,
``bench sparkplug``): their product, ceiling, ratio and target in one machine-readable
line, which ``mestwin bench all`` reads for the summary table of ``docs/BENCHMARKS.md``
(the format: ``loadtests.bench.result.SUMMARY``)."""

from __future__ import annotations

import json

SUMMARY = "summary: "


def figure(label: str, value: float, unit: str, *, lower_better: bool = False) -> dict[str, object]:
    """A figure of the summary: ``value`` in ``unit``, what it is in ``label``."""
    found: dict[str, object] = {"label": label, "value": round(value, 6), "unit": unit}
    if lower_better:
        found["lower_better"] = True
    return found


def summary_line(
    product: dict[str, object] | None,
    ceiling: dict[str, object] | None,
    ratio: float | None,
    target: str,
    met: bool | None,
) -> str:
    """``summary: {...}``: the line to print (last but for the ``ratio:`` line)."""
    body = {
        "product": product,
        "ceiling": ceiling,
        "ratio": None if ratio is None else round(ratio, 4),
        "target": target,
        "met": met,
    }
    return SUMMARY + json.dumps(body, ensure_ascii=False)
