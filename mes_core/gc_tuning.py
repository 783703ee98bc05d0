"""The cyclic garbage collector in the MES's long-running processes (issue 8).

Python's collector runs its young generation every 700 container allocations and, now
and then, a full collection that scans every object the process holds. An API worker
holds ~170,000 objects once FastAPI, SQLAlchemy, pydantic and the routes are loaded: a
full collection of those took 120-165 ms under ``mestwin bench api`` (measured with
``gc.callbacks``), a stall of every request in flight in that worker, which alone made
the tail of the latency. None of those objects ever becomes garbage.

:func:`settle_heap` moves what exists at start-up out of the collector's sight
(``gc.freeze``), so full collections scan only what was made since; :func:`fewer_collections`
raises the thresholds for a block. Cycles are still collected, less often.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: Thresholds while an API worker or a connector runs (Python's: 700, 10, 10). A request
#: or a batch of notifications allocates thousands of short-lived containers that make no
#: cycles; with the default first threshold the collector ran several times per request.
GC_THRESHOLDS = (10_000, 50, 50)


def raised_thresholds(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> tuple[int, ...]:
    """``thresholds``, never lower than what is set now."""
    return tuple(max(a, b) for a, b in zip(gc.get_threshold(), thresholds, strict=True))


@contextlib.contextmanager
def fewer_collections(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> Iterator[None]:
    """``thresholds`` for the block (never lower than what is set), then as it was."""
    before = gc.get_threshold()
    gc.set_threshold(*raised_thresholds(thresholds))
    try:
        yield
    finally:
        gc.set_threshold(*before)


def settle_heap(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """For a process that has finished starting: collect once, freeze what is left (the
    modules, the app, its caches: never garbage) so that later collections do not scan
    it, and raise the thresholds for the rest of the process's life."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*raised_thresholds(thresholds))
