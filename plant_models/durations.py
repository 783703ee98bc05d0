"""Durations as people write them: ``90s``, ``30m``, ``8h``, ``1d``, ``1h30m`` or plain seconds.

The engine's clock is in seconds from the model's start, so every duration in a plant model
(and on the command line) ends up as a float number of seconds.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a number (seconds) or a string such as ``90s``, ``1h30m``, ``1d``.

    Raises ``ValueError`` naming the accepted forms when ``value`` is neither.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 30m, 8h, 1d or a number of seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return float(text)
        except ValueError:
            pass
        pos = 0
        total = 0.0
        for match in _PART.finditer(text):
            if text[pos : match.start()].strip():
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        else:
            if pos and not text[pos:].strip():
                return total
    raise ValueError(
        f"expected a duration such as 90s, 30m, 8h, 1d or a number of seconds, got {value!r}"
    )


def format_duration(seconds: float) -> str:
    """A short human form of ``seconds`` (``8h``, ``1d2h``, ``90s``) for reports."""
    if seconds <= 0 or seconds != int(seconds):
        return f"{seconds:g}s"
    rest = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: seconds, written as a number or a duration string."""
