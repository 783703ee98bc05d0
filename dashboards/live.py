"""Live updates: a refresh that never piles up, and the "MES unreachable" banner.

Every page has one ``dcc.Interval`` and one server callback that makes one request to the
MES per tick. Dash drops the answer of a callback that is triggered again while still
running ("pruned"), so an interval shorter than a slow callback would never render
anything. The refresh callback therefore switches its own interval off while it runs
(Dash's ``running=`` side update) and back on when it returns, which restarts the
interval's timer: the next tick comes one period *after* the answer, however slow the MES
is, and requests never overlap.
"""

from __future__ import annotations

from typing import Any, Final

from dash import Input, Output, State, dcc, html

#: Refresh period: the page shows a change within this plus one request's time (< 2 s).
PERIOD_MS: Final = 1000


def tick_id(page: str) -> str:
    return f"{page}-tick"


def banner_id(page: str) -> str:
    return f"{page}-banner"


def cursor_id(page: str) -> str:
    return f"{page}-cursor"


def live_components(page: str, period_ms: int = PERIOD_MS) -> list[Any]:
    """What a live page needs: its interval, its banner and a cursor store (what the
    browser already has, so the next refresh only sends what is new)."""
    return [
        dcc.Interval(id=tick_id(page), interval=period_ms, n_intervals=0),
        html.Div(id=banner_id(page), className="banner hidden", role="alert"),
        dcc.Store(id=cursor_id(page), data=None),
    ]


def tick_input(page: str) -> Input:
    return Input(tick_id(page), "n_intervals")


def cursor_state(page: str) -> State:
    return State(cursor_id(page), "data")


def banner_outputs(page: str) -> list[Output]:
    return [Output(banner_id(page), "children"), Output(banner_id(page), "className")]


def cursor_output(page: str) -> Output:
    return Output(cursor_id(page), "data")


def no_pile_up(page: str) -> list[tuple[Output, Any, Any]]:
    """The ``running=`` argument of a page's refresh callback (see the module docstring)."""
    return [(Output(tick_id(page), "disabled"), True, False)]


def banner_ok() -> tuple[Any, str]:
    """Banner children and class when the MES answered: hidden."""
    return "", "banner hidden"


def banner_error(message: str, *, login: bool = False) -> tuple[Any, str]:
    """Banner children and class when the MES did not answer (or refused us)."""
    children: list[Any] = [html.B("MES unreachable: " if not login else "Not logged in: "), message]
    if login:
        children += [" ", dcc.Link("Log in", href="/login")]
    else:
        children.append(html.Span(" (retrying; the page recovers by itself)", className="muted"))
    return children, "banner error"
