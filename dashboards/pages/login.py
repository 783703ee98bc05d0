"""Log in to the MES as a person (the session's client then acts as them), or log out."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards.pages.base import PageContext
from dashboards.session import Credentials
from dashboards.source import MesAuthError, SourceError

PATH = "/login"
TITLE = "Log in"
PAGE = "login"


def layout(ctx: PageContext, query: dict[str, list[str]]) -> html.Div:
    return html.Div(
        [
            html.H2("Log in to the MES"),
            html.P(["MES at ", html.Code(ctx.mes_url)], className="muted"),
            html.Div(
                [
                    html.Label("User", htmlFor="login-user"),
                    dcc.Input(id="login-user", type="text", autoComplete="username"),
                    html.Label("Password", htmlFor="login-password"),
                    dcc.Input(
                        id="login-password",
                        type="password",
                        autoComplete="current-password",
                        n_submit=0,
                    ),
                    html.Div(
                        [
                            html.Button("Log in", id="login-submit", n_clicks=0),
                            " ",
                            html.Button(
                                "Log out", id="logout-submit", n_clicks=0, className="secondary"
                            ),
                        ]
                    ),
                    html.P(id="login-result"),
                ],
                className="card login",
            ),
        ],
        className="page",
    )


def register(app: Dash, ctx: PageContext) -> None:
    @app.callback(
        Output("login-result", "children"),
        Output("login-password", "value"),
        Output("whoami", "children", allow_duplicate=True),
        Input("login-submit", "n_clicks"),
        Input("login-password", "n_submit"),
        State("login-user", "value"),
        State("login-password", "value"),
        prevent_initial_call=True,
    )
    def login(
        _clicks: int, _submit: int, user: str | None, password: str | None
    ) -> tuple[Any, ...]:
        if not user or not password:
            return ("Enter a user and a password.", no_update, no_update)
        try:
            session = ctx.sessions.login(Credentials(user.strip(), password))
        except MesAuthError as exc:
            return (f"Refused: {exc}", "", no_update)
        except SourceError as exc:
            return (f"The MES did not answer: {exc}", no_update, no_update)
        roles = ", ".join(session.roles) or "no role"
        return (
            [f"Logged in as {session.user} ({roles}). ", dcc.Link("Go to the plant", href="/")],
            "",
            f"{session.user} ({roles})",
        )

    @app.callback(
        Output("login-result", "children", allow_duplicate=True),
        Output("whoami", "children", allow_duplicate=True),
        Input("logout-submit", "n_clicks"),
        prevent_initial_call=True,
    )
    def logout(_clicks: int) -> tuple[Any, ...]:
        ctx.sessions.logout()
        return ("Logged out.", "not logged in")
