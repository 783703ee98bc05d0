"""What the OPC UA fast paths of both ends share: the asyncua versions they were checked
against, and the collector thresholds both processes run with (issue 18).

The twin's server (``twin.opcua.fastpath``) and the MES's connector
(``mes_core.connectors.opcua.publish``) each replace a piece of asyncua with a lean one
that copies asyncua's own logic or wire format: right only for the asyncua versions it was
compared with. Both ask :func:`asyncua_checked` before installing theirs; on another
version asyncua's own code stays (slower, never wrong), the log says so and the benchmarks
print :func:`fast_paths_status`. ``pyproject.toml`` pins asyncua to the same versions and
``tests/fastpaths`` fails when the installed one is outside them.

Like ``sparkplug_b`` (the protocol both Sparkplug ends share), this package imports
nothing of the project, so both sides may import it without crossing PRODUCT.md's
boundaries.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from importlib.metadata import version

ASYNCUA_CHECKED = ("2.1.0",)
"""asyncua versions both fast paths were checked against (their tests compare them with
asyncua's own code and bytes); ``pyproject.toml`` admits exactly these. To admit another:
install it, run ``tests/opcua`` (the fast paths' equivalence tests), add it here and to
``pyproject.toml``."""

FAST_PATHS = (
    "twin server: lean data change notifications and their encoding",
    "connector: lean publish decoding",
)


def asyncua_version() -> str:
    """The installed asyncua's version."""
    return version("asyncua")


def asyncua_checked(installed: str | None = None) -> bool:
    """Whether ``installed`` (default: the installed asyncua) is one the fast paths were
    checked against."""
    return (asyncua_version() if installed is None else installed) in ASYNCUA_CHECKED


def fast_paths_status(installed: str | None = None) -> str:
    """One line for a benchmark's output: whether the fast paths are on, and if not why."""
    installed = asyncua_version() if installed is None else installed
    checked = ", ".join(ASYNCUA_CHECKED)
    if asyncua_checked(installed):
        return f"fast paths: on (asyncua {installed}, checked against {checked})"
    return (
        f"fast paths: OFF - asyncua {installed} is not a version they were checked against "
        f"({checked}); asyncua's own code runs instead (slower): {'; '.join(FAST_PATHS)}"
    )


GC_THRESHOLDS = (10_000, 50, 50)
"""The cyclic garbage collector's thresholds while a twin is served, a connector runs or an
API worker serves (Python's: 700, 10, 10). The engine's events, the values written, the
notifications queued and decoded, a request's objects are short-lived containers that make
no cycles; with the default first threshold the collector ran every few hundred of them
and scanned the older generations often. Cycles are still collected, less often."""


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
