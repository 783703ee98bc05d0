"""Booking the plant's counts and samples into Tryton: the OPC UA gateway's batches.

Counts become the production's output moves (good units at the order's last work unit
into storage, units scrapped anywhere into lost-and-found, kept at the plant's figures);
sampled process values become ``quality.inspection`` records of the product's control.
``TrytonSut`` takes this as a base; its state (productions, master data, the counts
booked) is set up by ``TrytonSut.__init__``.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

from mes_core.schemas.plant_events import (
    CountEvent,
    IngestResult,
    MeasurementEvent,
    PlantEvent,
)
from mestwin_tryton.collector import OpcUaCollector
from mestwin_tryton.masterdata import MasterData
from mestwin_tryton.rpc import TrytonRpc
from plant_models.schema import PlantModel
from twin.scenario.sut import UnitProgress


class TrytonBooking:
    """The plant-data half of the Tryton adapter (counts, samples, caught-up checks)."""

    rpc: TrytonRpc
    _collector_rpc: TrytonRpc | None
    md: MasterData
    plant: PlantModel | None
    productions: dict[str, int]
    order_product: dict[str, str]
    last_work_unit: dict[str, str]
    collector: OpcUaCollector | None
    _counts: dict[str, list[int]]
    _lock: threading.Lock
    unbooked: list[str]

    def booked_counters(self) -> dict[str, tuple[int, int]]:
        """Per work unit, the PackML (processed, defective) booked into Tryton."""
        return self.collector.booked_counters() if self.collector else {}

    def caught_up(self, until: float, expected: dict[str, UnitProgress]) -> bool:
        """Has Tryton booked, per work unit, the cumulative counts the plant published
        (``expected``: work unit -> progress with ``good`` and ``scrap``)?"""
        booked = self.booked_counters()
        for wu, want in expected.items():
            processed, defective = booked.get(wu, (0, 0))
            if (processed - defective, defective) < (int(want.good), int(want.scrap)):
                return False
        return True

    def wait_caught_up(self, expected: dict[str, tuple[int, int]], timeout: float) -> bool:
        """Block until Tryton has booked the plant's counters ``expected``."""
        return self.collector.wait_booked(expected, timeout) if self.collector else False

    def _book(self, events: list[PlantEvent]) -> None:
        """The gateway's batch: counts to output moves, measurements to inspections (one
        ``create`` and one ``process`` for all of a batch's samples)."""
        touched: set[str] = set()
        samples: list[dict[str, Any]] = []
        for event in events:
            if isinstance(event, CountEvent) and event.job_order:
                product = self.order_product.get(event.job_order)
                if product is None:
                    continue
                last = self.last_work_unit.get(product) == event.work_unit
                with self._lock:
                    counts = self._counts[event.job_order]
                    counts[0] += event.good if last else 0
                    counts[1] += event.scrap  # units scrapped anywhere on the line
                touched.add(event.job_order)
            elif isinstance(event, MeasurementEvent) and event.job_order:
                sample = self._inspection(event)
                if sample is not None:
                    samples.append(sample)
        rpc = self._collector_rpc or self.rpc
        if samples:
            inspections = rpc.create("quality.inspection", samples)
            rpc.call("quality.inspection", "process", inspections)
        with self._lock:
            for order in sorted(touched):
                self._book_order(order)

    def _book_order(self, order: str) -> None:
        """Output moves of ``order`` at the plant's figures (caller holds the lock)."""
        rpc = self._collector_rpc or self.rpc
        good, scrap = self._counts.get(order, [0, 0])
        pid = self.productions.get(order)
        if pid is None:
            self.unbooked.append(order)
            return
        assert self.plant is not None
        product = self.plant.product(self.order_product[order])
        fg = self.md.products[product.material]
        for location, quantity in ((self.md.storage, good), (self.md.lost_found, scrap)):
            moves = self._output_moves(pid, location, rpc)
            if moves:
                rpc.write("stock.move", moves[:1], {"quantity": float(quantity)})
            elif quantity > 0:
                rpc.create(
                    "stock.move",
                    [
                        {
                            "production_output": pid,
                            "product": fg,
                            "quantity": float(quantity),
                            "unit": self.md.units[product.material],
                            "from_location": self.md.production_location,
                            "to_location": location,
                            "company": self.md.company,
                            # a price into storage (Tryton costs it at done), none as waste
                            **(
                                {"unit_price": Decimal(0), "currency": self.md.currency}
                                if location == self.md.storage
                                else {}
                            ),
                        }
                    ],
                )

    def _output_moves(self, pid: int, location: int, rpc: TrytonRpc | None = None) -> list[int]:
        return (rpc or self.rpc).search(
            "stock.move",
            [
                ("production_output", "=", pid),
                ("to_location", "=", location),
                ("state", "!=", "cancelled"),
            ],
            order=[("id", "ASC")],
        )

    def _inspection(self, event: MeasurementEvent) -> dict[str, Any] | None:
        """A sample as an inspection of the production by its characteristic's control."""
        order = event.job_order or ""
        product = self.order_product.get(order)
        pid = self.productions.get(order)
        control = self.md.controls.get(f"{product}/{event.characteristic}")
        if product is None or pid is None or control is None:
            return None
        return {
            "company": self.md.company,
            "control": control,
            "origin": f"production,{pid}",
            "reference": f"{event.work_unit} {event.timestamp.isoformat()}",
            "points": {event.characteristic: float(event.value)},
        }

    def post_events(self, events: list[PlantEvent]) -> IngestResult:
        """The direct collector's path: the same booking as the OPC UA gateway's."""
        self._book(events)
        return IngestResult(accepted=len(events), duplicates=0, received_at=dt.datetime.now(dt.UTC))
