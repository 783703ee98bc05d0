"""Lot genealogy: which lots went into a lot an operation produces (pure).

ISA-95 Part 2 (IEC 62264-2) material lot relationships, as an auditor traces a recall:

- an edge ``parent -> child`` is booked on the operation that *consumed* the parent (a
  lot dispensed at DISPENSE is an input of DISPENSE, not of the operation that made the
  output lot);
- a routing may produce intermediate lots (granulate, blend): the lot operation *k*
  produces comes from the lots consumed since the job order's previous output lot, and
  from that previous (intermediate) lot, which the next operation took in. So a finished
  lot traces back through the intermediate lots to the raw materials, level by level.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ConsumedLot:
    """A quantity of a lot consumed by the operation with ``sequence`` (one booking)."""

    sequence: int
    lot: int
    quantity: float


@dataclass(frozen=True)
class ProducedLot:
    """A lot the operation with ``sequence`` produced (its quantity made)."""

    sequence: int
    lot: int
    quantity: float


@dataclass(frozen=True)
class Edge:
    """``parent`` went into the output lot, in the operation with ``sequence``."""

    parent: int
    sequence: int
    quantity: float


def edges_into_output(
    sequence: int,
    sequences: Iterable[int],
    consumed: Iterable[ConsumedLot],
    produced: Iterable[ProducedLot],
) -> list[Edge]:
    """The edges into the lot the operation ``sequence`` of a job order produces.

    ``sequences`` are all the job order's operation sequences, ``consumed`` its bookings,
    ``produced`` the lots its operations produced before this one. Inputs are the lots
    consumed by the operations after the previous producing operation up to this one
    (each edge on its consuming operation, quantities summed), and the lots that previous
    operation produced, taken in by the operation that follows it."""
    earlier = [p for p in produced if p.sequence < sequence]
    since = max((p.sequence for p in earlier), default=None)
    window = [s for s in sorted(set(sequences)) if (since is None or s > since) and s <= sequence]
    taken: dict[tuple[int, int], float] = defaultdict(float)
    for c in consumed:
        if c.sequence in window:
            taken[(c.lot, c.sequence)] += c.quantity
    edges = [Edge(lot, seq, qty) for (lot, seq), qty in taken.items()]
    if since is not None and window:
        explicit = {lot for lot, _ in taken}
        edges += [
            Edge(p.lot, window[0], p.quantity)
            for p in earlier
            if p.sequence == since and p.lot not in explicit
        ]
    return sorted(edges, key=lambda e: (e.sequence, e.parent))
