"""Job orders as the engine tracks them (the ledger keeps their public record)."""

from __future__ import annotations

from typing import Any


class Job:
    """A job order inside the engine (the ledger keeps its public record)."""

    __slots__ = (
        "done",
        "id",
        "made",
        "outstanding",
        "product",
        "quantity",
        "release_total",
        "released",
        "scrapped",
        "segments",
        "started",
    )

    def __init__(self, job_id: str, product: str, quantity: float, segments: list[Any]) -> None:
        self.id = job_id
        self.product = product
        self.quantity = quantity
        self.segments = segments  # per work unit index: OperationSegment | None
        self.released = 0
        # units to release in all: the quantity, or an assembly line's parts (``assembly``)
        self.release_total = quantity
        self.made = 0
        self.scrapped = 0
        self.outstanding = 0
        self.started = False
        self.done = False
