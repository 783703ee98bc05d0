"""The app without a browser: sessions, the command line, and bad input."""

from __future__ import annotations

from dataclasses import dataclass, field

import flask
import pytest
from typer.testing import CliRunner

from dashboards.session import Credentials, MesSession, SessionRegistry
from dashboards.source import DashboardSource, MesAuthError
from mestwin.cli import build_app


@dataclass
class FakeSession:
    user: str | None
    roles: tuple[str, ...] = ()
    closed: bool = False
    source: DashboardSource = field(default=None)  # type: ignore[assignment]

    def close(self) -> None:
        self.closed = True


def registry(max_sessions: int = 2) -> tuple[SessionRegistry, list[FakeSession]]:
    opened: list[FakeSession] = []

    def connect(credentials: Credentials | None) -> MesSession:
        if credentials is not None and credentials.password != "right":
            raise MesAuthError("wrong user or password")
        session = FakeSession(user=credentials.username if credentials else None)
        opened.append(session)
        return session

    return SessionRegistry(connect, max_sessions=max_sessions), opened


def test_each_browser_session_gets_its_own_mes_session_and_old_ones_are_closed() -> None:
    """No shared global client: a session per browser cookie, least recently used closed
    when the registry is full."""
    sessions, opened = registry(max_sessions=2)
    app = flask.Flask(__name__)
    app.secret_key = "test"
    for _ in range(3):
        with app.test_request_context():
            sessions.current()
    assert len(opened) == 3 and len(sessions) == 2
    assert opened[0].closed and not opened[1].closed and not opened[2].closed


def test_login_replaces_the_browsers_session_and_a_wrong_password_is_refused() -> None:
    sessions, _ = registry()
    app = flask.Flask(__name__)
    app.secret_key = "test"
    with app.test_request_context():
        anonymous = sessions.current()
        assert anonymous.user is None
        with pytest.raises(MesAuthError):
            sessions.login(Credentials("alice", "wrong"))
        assert sessions.current() is anonymous
        alice = sessions.login(Credentials("alice", "right"))
        assert sessions.current() is alice
        # The replaced session stays open a moment for refreshes already under way.
        assert not anonymous.closed
        sessions.logout()
        sessions.close_all()
        assert anonymous.closed and alice.closed


def test_dashboard_command_refuses_bad_options_with_a_clear_message() -> None:
    runner = CliRunner()
    app = build_app()
    bad_url = runner.invoke(app, ["dashboard", "--mes-url", "localhost:8000"])
    assert bad_url.exit_code == 2
    assert "--mes-url must be an http(s) URL" in bad_url.output
    no_password = runner.invoke(
        app,
        ["dashboard", "--mes-url", "http://127.0.0.1:1", "--user", "admin"],
        env={"MESTWIN_DASHBOARD_PASSWORD": ""},
    )
    assert no_password.exit_code == 2
    assert "--user needs --password" in no_password.output
    assert "Traceback" not in bad_url.output + no_password.output


def test_concurrent_first_requests_of_a_browser_share_one_session_and_close_the_other() -> None:
    """A page's first load runs callbacks at once; the session one of them stored first is
    the one every callback uses, and the other opened meanwhile is closed, never used."""
    opened: list[FakeSession] = []
    sessions: SessionRegistry

    def connect(credentials: Credentials | None) -> MesSession:
        session = FakeSession(user=None)
        opened.append(session)
        if len(opened) == 1:
            # Another callback of the same browser gets in while this one connects.
            sessions.current()
        return session

    sessions = SessionRegistry(connect)
    app = flask.Flask(__name__)
    app.secret_key = "test"
    with app.test_request_context():
        first = sessions.current()
        assert first is opened[1] and not opened[1].closed
        assert opened[0].closed
        assert sessions.current() is first and len(sessions) == 1


def test_only_a_person_who_logged_in_may_act_and_the_trainer_needs_the_password() -> None:
    """Issue 15: the start-up user (admin beside a run) only watches; the terminals act as
    whoever logged in at /login; the trainer console opens with the trainer's password."""
    from dashboards.run_control import RunControlClient

    sessions, _ = registry()
    app = flask.Flask(__name__)
    app.secret_key = "test"
    control = RunControlClient("http://127.0.0.1:9", "token", "trainer-secret")
    try:
        assert not control.is_trainer_password("wrong") and not control.is_trainer_password("")
        assert control.is_trainer_password("trainer-secret")
        assert not RunControlClient("http://127.0.0.1:9", "t", "").is_trainer_password("")
        with app.test_request_context():
            sessions.current()  # a default session: watching only
            assert sessions.acting() is None and not sessions.is_trainer()
            anna = sessions.login(Credentials("OP-ANNA", "right"))
            assert sessions.acting() is anna
            sessions.mark_trainer()
            assert sessions.is_trainer()
            sessions.logout()
            assert sessions.acting() is None
            sessions.close_all()
    finally:
        control.close()
