"""OEE per ISO 22400-2: the three factors and the OEE index, and the loss waterfall.

The waterfall walks the time model of ISO 22400-2:2014 clause 5 from planned busy time (PBT)
down to the time that made good product:

    PBT - setup (AUST) - delays (ADET: down, blocked, starved) - not executing (ADOT)
        = APT (actual production time)
    APT - speed loss                 = PRU x PQ   (APT x effectiveness)
    PRU x PQ - quality loss          = PRU x GQ   (that x quality ratio)

so that the last bar over the first is exactly the OEE index (clause 6: OEE = availability x
effectiveness x quality ratio = PRU x GQ / PBT).
"""

from __future__ import annotations

from dashboards.figures import Figure
from dashboards.figures.common import percent
from dashboards.theme import figure_layout
from dashboards.views import OeeView

_FACTOR_COLOURS = ("#1565c0", "#00897b", "#6a1b9a", "#2e7d32")


def oee_factors_figure(oee: OeeView) -> Figure:
    """Availability, effectiveness, quality ratio and OEE as bars in percent.

    An undefined factor (no planned time, no production) gets no bar and reads "no data".
    """
    names = ["Availability", "Effectiveness", "Quality ratio", "OEE"]
    values = [oee.availability, oee.effectiveness, oee.quality_ratio, oee.oee]
    return {
        "data": [
            {
                "type": "bar",
                "x": names,
                "y": [None if v is None else round(v * 100, 2) for v in values],
                "text": [percent(v) for v in values],
                "textposition": "outside",
                "cliponaxis": False,
                "marker": {"color": list(_FACTOR_COLOURS)},
                "hovertemplate": "%{x}: %{text}<extra></extra>",
            }
        ],
        "layout": figure_layout(
            title={"text": f"OEE {percent(oee.oee)} (ISO 22400-2)", "x": 0.02},
            # Effectiveness above 100 % (faster than the routing's PRU) is shown, not clipped.
            yaxis={
                "title": {"text": "%"},
                "range": [0, max([115.0] + [v * 100 + 15 for v in values if v is not None])],
                "fixedrange": True,
            },
            xaxis={"fixedrange": True},
            showlegend=False,
            annotations=[
                {
                    "x": name,
                    "y": 5,
                    "text": "no data",
                    "showarrow": False,
                    "font": {"color": "#9e9e9e"},
                }
                for name, v in zip(names, values, strict=True)
                if v is None
            ],
        ),
    }


def loss_steps(oee: OeeView) -> list[tuple[str, float, str]]:
    """The waterfall's steps in hours: ``(label, value, measure)``, measure ``absolute``,
    ``relative`` (a loss, negative) or ``total`` (a subtotal the chart computes)."""
    hours = 1 / 3600
    steps: list[tuple[str, float, str]] = [
        ("Planned busy time (PBT)", oee.pbt * hours, "absolute"),
        ("Setup (AUST)", -oee.aust * hours, "relative"),
        ("Delays: down, blocked, starved (ADET)", -oee.adet * hours, "relative"),
        ("Not executing (ADOT)", -oee.adot * hours, "relative"),
        ("Actual production time (APT)", 0.0, "total"),
    ]
    if oee.effectiveness is not None:
        net = oee.apt * oee.effectiveness
        steps += [
            ("Speed loss", -(oee.apt - net) * hours, "relative"),
            ("Net production time (PRU×PQ)", 0.0, "total"),
        ]
        if oee.quality_ratio is not None:
            steps += [
                ("Quality loss", -net * (1 - oee.quality_ratio) * hours, "relative"),
                ("Good production time (PRU×GQ)", 0.0, "total"),
            ]
    return steps


def loss_waterfall_figure(oee: OeeView) -> Figure:
    """The loss waterfall of the window, in hours (see the module docstring)."""
    steps = loss_steps(oee)
    return {
        "data": [
            {
                "type": "waterfall",
                "orientation": "v",
                "x": [s[0] for s in steps],
                "y": [round(s[1], 4) for s in steps],
                "measure": [s[2] for s in steps],
                # Totals carry y = 0 (the chart sums them): label them by their sum.
                "texttemplate": [
                    "%{delta:.2f} h" if s[2] == "relative" else "%{final:.2f} h" for s in steps
                ],
                "textposition": "outside",
                "cliponaxis": False,
                "decreasing": {"marker": {"color": "#c62828"}},
                "increasing": {"marker": {"color": "#2e7d32"}},
                "totals": {"marker": {"color": "#1565c0"}},
                "connector": {"line": {"color": "#b0bec5"}},
                "hovertemplate": [
                    "%{x}: %{delta:.2f} h<extra></extra>"
                    if s[2] == "relative"
                    else "%{x}: %{final:.2f} h<extra></extra>"
                    for s in steps
                ],
            }
        ],
        "layout": figure_layout(
            title={"text": "Loss waterfall (hours)", "x": 0.02},
            yaxis={"title": {"text": "hours"}, "fixedrange": True},
            xaxis={"tickangle": -25, "automargin": True, "fixedrange": True},
            showlegend=False,
        ),
    }
