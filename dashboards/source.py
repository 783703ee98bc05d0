"""Where the pages get their data: the ``DashboardSource`` protocol and its errors.

A page never talks HTTP itself: it asks its session's source for a view
(``dashboards.views``). The real source (``dashboards.mes_source``) reads the MES's public
API through ``mes_core.client``; tests and the benchmark may hand in another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from dashboards.views import (
    GenealogyView,
    JobOrderView,
    LineView,
    PlantView,
    QualityView,
)


class SourceError(Exception):
    """The base of every error a source raises; its message is shown on the page."""


class MesUnavailable(SourceError):
    """The MES did not answer (connection refused, timeout, 5xx): shown as a banner, and
    the page keeps retrying."""


class MesAuthError(SourceError):
    """The MES refused our credentials or token (401/403)."""


class NotFound(SourceError):
    """The MES does not know the asked object (a lot, a job order, a line)."""


class DashboardSource(Protocol):
    """What the pages read. Every method is one request to the MES where possible (the
    live-update budget is one request per tick per page)."""

    def plant(self) -> PlantView:
        """Every line and work unit with state, job order, counts and active alarms."""
        ...

    def lines(self) -> list[tuple[str, str]]:
        """(code, name) of every line, in plant order."""
        ...

    def now(self) -> datetime | None:
        """The plant's clock as the MES knows it (the latest plant event's time), None
        before the first event. A simulated plant keeps a timeline of its own: "now" on the
        pages (durations, due dates, KPI windows) is this one, during and after a run."""
        ...

    def latest_data(self, line: str) -> datetime | None:
        """Plant time of the line's latest state change, if any. A scenario run may keep a
        simulated clock far from the wall clock; the Line page can follow this one."""
        ...

    def line(self, code: str, start: datetime, end: datetime) -> LineView:
        """KPIs, states and throughput of one line over ``[start, end)``."""
        ...

    def job_orders(self) -> list[JobOrderView]:
        """Every job order, newest first."""
        ...

    def job_order(self, code: str) -> JobOrderView:
        """One job order with its operations and actuals (raises ``NotFound``)."""
        ...

    def quality(self, characteristic: str | None) -> QualityView:
        """SPC charts (one characteristic, or all when ``None``), open holds and
        nonconformances."""
        ...

    def lots(self) -> list[str]:
        """Codes of the material lots, newest first (for the genealogy picker)."""
        ...

    def genealogy(self, lot: str) -> GenealogyView:
        """The lot's trace backward and forward, any depth (raises ``NotFound``)."""
        ...
