"""What every page module shares: the app's context, and reading through the session."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dash import html

from dashboards.live import banner_error
from dashboards.session import SessionRegistry
from dashboards.source import DashboardSource, MesAuthError, MesUnavailable, SourceError

if TYPE_CHECKING:
    from dashboards.acting import Acting, Outcome
    from dashboards.run_control import RunControlClient
    from dashboards.session import MesSession

T = TypeVar("T")

log = logging.getLogger("dashboards")


@dataclass
class PageContext:
    """Everything a page's callbacks need, bound to one app instance."""

    sessions: SessionRegistry
    mes_url: str
    period_ms: int = 1000
    #: report.json files offered on the Scenario report page (given at start-up).
    reports: list[Path] = field(default_factory=list)
    #: Clock of the pages (a test may pin it).
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: The control channel of the scenario run beside (trainer console, session record).
    control: RunControlClient | None = None
    #: Terminal actions state the plant's clock (a simulated run beside: see acting.py).
    act_at_plant_time: bool = False

    def acting(self) -> tuple[Acting, MesSession] | None:
        """The calling browser's terminal, if a person logged in there at /login."""
        from dashboards.acting import Acting
        from dashboards.mes_source import MesClientSession

        session = self.sessions.acting()
        if not isinstance(session, MesClientSession) or session.user is None:
            return None
        clock = self.control.plant_now if self.control is not None else None
        acting = Acting(session.client, act_at_plant_time=self.act_at_plant_time, plant_clock=clock)
        return acting, session

    def record(self, outcome: Outcome, session: MesSession) -> None:
        """Post a trainee's action and the MES's answer to the run's session record."""
        if self.control is not None and session.user is not None:
            self.control.post_action(outcome.record(session.user, session.roles))

    def now(self) -> datetime:
        """ "Now" for the pages: the plant's clock as the MES knows it (a simulated run keeps
        a timeline of its own, during and after the run), else ``clock`` (no plant event
        yet). Raises ``SourceError`` like any read."""
        return self.read(lambda source: source.now()) or self.clock()

    def read(self, what: Callable[[DashboardSource], T]) -> T:
        """Run ``what`` against the calling browser's session.

        A refused token drops the session (the next tick logs in again with the default
        credentials) and is re-raised, like every other ``SourceError``, for the banner.
        """
        try:
            return what(self.sessions.current().source)
        except MesAuthError:
            self.sessions.expire_current()
            raise


def failure_banner(exc: SourceError) -> tuple[Any, str]:
    """Banner children and class for a failed read."""
    if isinstance(exc, MesAuthError):
        return banner_error(str(exc), login=True)
    if isinstance(exc, MesUnavailable):
        return banner_error(str(exc))
    children: list[Any] = [html.B("Cannot show this: "), str(exc)]
    return children, "banner error"


def data(**attributes: str) -> dict[str, Any]:
    """``data-*`` attributes for a component (machine-readable for tests and scripts)."""
    return {f"data-{k}": v for k, v in attributes.items()}


def query_value(query: dict[str, list[str]], key: str) -> str | None:
    """The first value of ``key`` in a parsed query string, if any and not blank."""
    values = query.get(key) or []
    value = values[0].strip() if values else ""
    return value or None
