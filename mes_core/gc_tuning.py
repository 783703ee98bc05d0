"""The cyclic garbage collector in the MES's long-running processes (issue 8).

Python's collector runs its young generation every 700 container allocations and, now
and then, a full collection that scans every object the process holds. An API worker
holds ~170,000 objects once FastAPI, SQLAlchemy, pydantic and the routes are loaded: a
full collection of those took 120-165 ms under ``mestwin bench api`` (measured with
``gc.callbacks``), a stall of every request in flight in that worker, which alone made
the tail of the latency. None of those objects ever becomes garbage.

:func:`settle_heap` moves what exists at start-up out of the collector's sight
(``gc.freeze``), so full collections scan only what was made since; ``fastpaths.fewer_collections``
raises the thresholds for a block. Cycles are still collected, less often.
"""

from __future__ import annotations

import gc

# One copy for the API, the connector and the twin's server: the thresholds and
# ``fewer_collections`` (which raises them for a block) live in ``fastpaths``.
from fastpaths import GC_THRESHOLDS, raised_thresholds


def settle_heap(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """For a process that has finished starting: collect once, freeze what is left (the
    modules, the app, its caches: never garbage) so that later collections do not scan
    it, and raise the thresholds for the rest of the process's life."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*raised_thresholds(thresholds))
