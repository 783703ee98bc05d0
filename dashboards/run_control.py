"""The dashboards' side of a running scenario's control channel (``mestwin run
--dashboard``): the trainer console's commands and feed, and the trainees' session record.

The scenario runner serves a small JSON API on a loopback port (its side is
``twin.scenario.control``; the dashboards do not import the twin: they speak its HTTP, as
they speak the MES's). The runner hands its URL, bearer token and the trainer's password
to the dashboards' process in the environment; the browser never sees the token.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime, timedelta
from typing import Any

import httpx

log = logging.getLogger("dashboards")

TIMEOUT_S = 5.0


class RunControlError(Exception):
    """The run did not answer, or refused a command (the message says why)."""


class RunControlClient:
    """One client per dashboards process (thread-safe: httpx.Client is)."""

    def __init__(self, url: str, token: str, trainer_password: str) -> None:
        self.url = url.rstrip("/")
        self._trainer_password = trainer_password
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
            trust_env=False,
        )

    def is_trainer_password(self, password: str) -> bool:
        """Constant-time check of the password the trainer typed."""
        if not self._trainer_password:
            return False
        return hmac.compare_digest(password.encode(), self._trainer_password.encode())

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise RunControlError(f"the run does not answer ({type(exc).__name__})") from None
        if response.status_code >= 400:
            try:
                message = str(response.json().get("error", response.text))
            except ValueError:
                message = response.text
            raise RunControlError(message or f"HTTP {response.status_code}")
        return response.json()

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", "/status")
        return data

    def plant_now(self) -> datetime:
        """The run's own plant clock: its plant start plus the plant second it is at."""
        status = self.status()
        start = datetime.fromisoformat(str(status["plant_start"]))
        return start + timedelta(seconds=float(status["t"]))

    def injectable(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._call("GET", "/injectable")
        return data

    def command(self, command: str, **fields: Any) -> None:
        """Queue a command (pause, resume, speed, stop, inject); raises with the run's
        reason when it refuses."""
        self._call("POST", "/commands", json={"command": command, **fields})

    def record(self, since: int = 0) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", "/record", params={"since": since})
        return data

    def post_action(self, action: dict[str, Any]) -> None:
        """A trainee's action and the MES's answer, for the session record. A run that
        does not answer loses the entry (logged); the trainee's action stands."""
        try:
            self._call("POST", "/actions", json=action)
        except RunControlError as exc:
            log.warning("session record: could not post %s: %s", action.get("action"), exc)

    def close(self) -> None:
        self._http.close()
