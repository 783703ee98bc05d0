"""The window of plant time a plant event may be stamped in (issue 21, item 9).

Around the plant clock: from :attr:`PlantTimeWindow.behind` before the earlier of the plant
clock and the MES's own clock to :attr:`PlantTimeWindow.ahead` after the later of the two
(``MESTWIN_PLANT_TIME_MAX_BEHIND``, ``MESTWIN_PLANT_TIME_MAX_AHEAD``). The plant clock is
the latest plant time the MES holds (``GET /api/v1/plant-events/clock``); the MES's clock
counts too, so that a simulated plant dated in the past, or the first events of a new
run, are not refused for being where the wall clock is. A plant clock never set (year 1)
or corrupted (year 9999) is refused, per event, before anything of its batch is written.

Each API worker keeps the plant clock it last knew (read from the database on its first
batch, moved on by the batches it stores). Another worker may have moved it since: an
event that looks too far ahead is checked again against the database before it is
refused. Only the first batch of a worker and the refusals read the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mes_core.schemas.plant_events import PlantEventBatch, outside_plant_time


class PlantTimeWindow:
    """Checks batches against the window around the plant clock (one per API worker)."""

    def __init__(self, *, ahead: timedelta, behind: timedelta) -> None:
        self.ahead = ahead
        self.behind = behind
        self._lock = threading.Lock()
        self._plant_clock: datetime | None = None
        self._loaded = False

    def _bounds(self, now: datetime) -> tuple[datetime, datetime]:
        clock = self._plant_clock
        low = now if clock is None else min(clock, now)
        high = now if clock is None else max(clock, now)
        return low - self.behind, high + self.ahead

    def _learn(self, clock: datetime | None) -> None:
        with self._lock:
            self._loaded = True
            if clock is not None and (self._plant_clock is None or clock > self._plant_clock):
                self._plant_clock = clock

    def outside(
        self, batch: PlantEventBatch, plant_clock: Callable[[], datetime | None]
    ) -> list[tuple[int, str]]:
        """``(index, message)`` of each event of ``batch`` outside the window;
        ``plant_clock`` reads the database's (called on the first batch and before a
        refusal)."""
        if not batch.events:
            return []
        if not self._loaded:
            self._learn(plant_clock())
        now = datetime.now(UTC)
        earliest, latest = self._bounds(now)
        stamps = [e.timestamp for e in batch.events]
        if min(stamps) >= earliest and max(stamps) <= latest:
            return []
        if max(stamps) > latest:
            self._learn(plant_clock())  # another worker may have moved it on
            earliest, latest = self._bounds(now)
        why = (
            f"{_span(self.behind)} before to {_span(self.ahead)} after the plant clock "
            f"{self._plant_clock.isoformat() if self._plant_clock else '(none yet)'} and the "
            "MES clock; MESTWIN_PLANT_TIME_MAX_BEHIND, MESTWIN_PLANT_TIME_MAX_AHEAD"
        )
        return outside_plant_time(batch, earliest, latest, why)

    def stored(self, batch: PlantEventBatch) -> None:
        """``batch`` was stored: the plant clock is at least its latest event."""
        if batch.events:
            self._learn(max(e.timestamp for e in batch.events))


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds % 86400 == 0:
        return f"{seconds / 86400:g} d"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"
