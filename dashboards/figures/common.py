"""Formatting shared by the figures: times on Plotly axes, durations, percentages."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """A timestamp for a Plotly date axis: naive UTC ISO text.

    Plotly.js has no time zones: an offset in the text is not honoured, so every time is
    converted to UTC first and the axes say "UTC".
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(sep=" ", timespec="milliseconds")


def format_duration(seconds: float) -> str:
    """Human duration with a resolution that suits its size: ``42 s``, ``12 min``, ``3 h 05``.

    Coarse on purpose: an Andon tile's text then changes about once a minute, not on every
    refresh, so live updates only touch the tiles that really changed.
    """
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours} h {rest // 60:02d}"
    days, rest = divmod(int(seconds), 86400)
    return f"{days} d {rest // 3600} h"


def percent(ratio: float | None) -> str:
    """A KPI ratio as a percentage; undefined ratios read "no data", never 0 %."""
    if ratio is None:
        return "no data"
    return f"{ratio * 100:.1f} %"


def number(value: float | None) -> str:
    """A quantity without a pointless ``.0`` (counts are whole; measured lots may not be)."""
    if value is None:
        return "–"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"
