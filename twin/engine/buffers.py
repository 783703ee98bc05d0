"""Buffers and conveyors between work units: FIFO, finite or not, with Little's-law figures."""

from __future__ import annotations

from collections import deque
from typing import Any

import simpy

from twin.engine.common import INFINITE
from twin.streams import Sampler


class BufferSim:
    """A FIFO buffer with ``capacity`` (0: direct hand-off; None: unbounded), optionally a
    conveyor (units become available ``transfer`` seconds after they entered).

    Any number of producers and consumers (the work units of a parallel station share
    their input and output buffers); waiting takers and blocked givers are served first
    come, first served. A broken work unit neither takes nor gives: it is passed over
    while broken (``broken`` > 0) and offers again when repaired (``repaired``). Keeps the
    integrals Little's law needs: time-average level, arrivals, sojourn times.
    """

    __slots__ = (
        "_getters",
        "_last",
        "_putters",
        "_transfer",
        "area",
        "capacity",
        "code",
        "entered",
        "env",
        "exited",
        "items",
        "sojourn",
    )

    def __init__(
        self, env: simpy.Environment, code: str, capacity: int | None, transfer: Sampler | None
    ) -> None:
        self.env = env
        self.code = code
        self.capacity = INFINITE if capacity is None else capacity
        self._transfer = transfer
        self.items: deque[tuple[float, float, Any]] = deque()
        # waiting takers (event, work unit) and blocked givers (event, unit, work unit)
        self._getters: deque[tuple[simpy.Event, Any]] = deque()
        self._putters: deque[tuple[simpy.Event, Any, Any]] = deque()
        self.area = 0.0
        self._last = 0.0
        self.entered = 0
        self.exited = 0
        self.sojourn = 0.0

    def _level_changes(self, now: float) -> None:
        self.area += len(self.items) * (now - self._last)
        self._last = now

    def _append(self, unit: Any, now: float) -> None:
        items = self.items
        self.area += len(items) * (now - self._last)  # level integral, inlined
        self._last = now
        if self._transfer is None:
            ready = now
        else:
            ready = now + self._transfer()
            if items and ready < items[-1][0]:
                ready = items[-1][0]  # a conveyor keeps its order
        items.append((ready, now, unit))
        self.entered += 1

    def _taker(self) -> simpy.Event | None:
        """The first waiting taker that is not broken (removed from the queue), or None."""
        getters = self._getters
        for i, (ev, wu) in enumerate(getters):
            if not (wu is not None and wu.broken):
                del getters[i]
                return ev
        return None

    def _giver(self) -> tuple[simpy.Event, Any] | None:
        """The first blocked giver that is not broken (removed), as (event, unit), or None."""
        putters = self._putters
        for i, (ev, unit, wu) in enumerate(putters):
            if not (wu is not None and wu.broken):
                del putters[i]
                return ev, unit
        return None

    def try_put(self, unit: Any) -> bool:
        """Put ``unit`` if there is room (or a waiting taker); False when full."""
        now = self.env._now
        items = self.items
        getters = self._getters
        if getters and self._transfer is None and not items:
            first, wu = getters[0]
            taker: simpy.Event | None = first
            if wu is None or not wu.broken:  # the first taker, inlined (``_taker``)
                getters.popleft()
            else:
                taker = self._taker()
            if taker is not None:
                self.entered += 1
                self.exited += 1
                taker.succeed(unit)
                return True
        if len(items) >= self.capacity:
            return False
        if self._transfer is None and not getters:  # the common case, inlined
            self.area += len(items) * (now - self._last)
            self._last = now
            items.append((now, now, unit))
            self.entered += 1
            return True
        self._append(unit, now)
        if getters and len(items) == 1:
            self._deliver_later(items[0][0] - now)
        return True

    def put_rework(self, unit: Any) -> None:
        """Put a unit sent back by a failed inspection: never blocks, even when full (the
        rework cart beside the buffer; the level may then exceed the capacity)."""
        now = self.env._now
        if self._getters and self._transfer is None and not self.items:
            taker = self._taker()
            if taker is not None:
                self.entered += 1
                self.exited += 1
                taker.succeed(unit)
                return
        self._append(unit, now)
        if self._getters and len(self.items) == 1:
            self._deliver_later(self.items[0][0] - now)

    def put_wait(self, unit: Any, wu: Any = None) -> simpy.Event:
        """An event that fires when ``unit`` has been taken into the buffer (``wu`` is
        blocked holding it meanwhile)."""
        ev = self.env.event()
        self._putters.append((ev, unit, wu))
        return ev

    def try_get(self) -> Any:
        """The next unit if one is there and ready, else None."""
        items = self.items
        if items:
            now = self.env._now
            ready, entered, unit = items[0]
            if ready > now:
                return None
            self.area += len(items) * (now - self._last)  # level integral, inlined
            self._last = now
            items.popleft()
            self.exited += 1
            self.sojourn += now - entered
            putters = self._putters
            if putters:
                ev, waiting, wu = putters[0]
                if wu is None or not wu.broken:  # the first giver, inlined (``_giver``)
                    putters.popleft()
                    self._append(waiting, now)
                    ev.succeed()
                else:
                    giver = self._giver()
                    if giver is not None:
                        self._append(giver[1], now)
                        giver[0].succeed()
            return unit
        if self._putters:  # capacity 0: take it straight from a blocked machine
            giver = self._giver()
            if giver is not None:
                self.entered += 1
                self.exited += 1
                giver[0].succeed()
                return giver[1]
        return None

    def get_wait(self, wu: Any = None) -> simpy.Event:
        """An event whose value is the next unit (``wu`` is starved until then)."""
        ev = self.env.event()
        self._getters.append((ev, wu))
        if self.items:  # a unit in transit on a conveyor
            self._deliver_later(self.items[0][0] - self.env.now)
        return ev

    def _deliver_later(self, delay: float) -> None:
        timer = self.env.timeout(max(delay, 0.0))
        timer.callbacks.append(self._deliver)

    def _deliver(self, _event: simpy.Event | None = None) -> None:
        while self._getters and self.items:
            if self.items[0][0] > self.env._now:  # a later head: wait for it
                self._deliver_later(self.items[0][0] - self.env._now)
                return
            taker = self._taker()
            if taker is None:
                return  # only broken takers: the first repaired one asks again
            unit = self.try_get()
            taker.succeed(unit)

    def repaired(self, wu: Any) -> None:
        """``wu`` (a taker or giver here) is repaired: serve it if it can be served now."""
        if any(w is wu for _, w in self._getters) and self.items:
            self._deliver()
        for i, (ev, unit, w) in enumerate(self._putters):
            if w is not wu:
                continue
            if not self.items and self._transfer is None and self._getters:
                taker = self._taker()
                if taker is not None:
                    del self._putters[i]
                    self.entered += 1
                    self.exited += 1
                    ev.succeed()
                    taker.succeed(unit)
                    return
            if len(self.items) < self.capacity:
                del self._putters[i]
                self._append(unit, self.env._now)
                ev.succeed()
                if self._getters and len(self.items) == 1:
                    self._deliver_later(self.items[0][0] - self.env._now)
            return

    def figures(self, now: float) -> dict[str, Any]:
        self._level_changes(now)
        return {
            "capacity": None if self.capacity == INFINITE else int(self.capacity),
            "level": len(self.items),
            "entered": self.entered,
            "exited": self.exited,
            "mean_level": self.area / now if now > 0 else 0.0,
            "arrival_rate": self.entered / now if now > 0 else 0.0,
            "mean_sojourn": self.sojourn / self.exited if self.exited else 0.0,
        }
