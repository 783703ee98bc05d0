"""Typed errors of the MES client, mirroring the API's JSON error body."""

from __future__ import annotations

from typing import Any

import httpx


class MesClientError(Exception):
    """Any error answer of the MES API: ``status``, ``rule`` code, ``message``, ``object``."""

    def __init__(
        self,
        status: int,
        rule: str,
        message: str,
        object: str | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(f"{status} {rule}: {message}")
        self.status = status
        self.rule = rule
        self.message = message
        self.object = object
        self.detail = detail


class MesRuleViolation(MesClientError):
    """An enforcement rule refused the action (409): ``rule`` says which one."""


class MesNotFound(MesClientError):
    """404: the object named does not exist."""


class MesConflict(MesClientError):
    """409 that is not a rule refusal (e.g. a code already taken)."""


class MesValidationError(MesClientError):
    """422: the request was malformed or out of range."""


class MesAuthError(MesClientError):
    """401: no, wrong or expired credentials."""


class MesForbidden(MesClientError):
    """403: the caller's role may not do this."""


#: Rule codes that come from enforcement rules, not from plain input errors.
RULE_CODES = frozenset(
    {
        "SEQUENCE",
        "MATERIAL_NOT_ON_BOM",
        "LOT_NOT_AVAILABLE",
        "LOT_EXPIRED",
        "LOT_QUANTITY",
        "CERTIFICATION",
        "EQUIPMENT_CLASS",
        "EQUIPMENT_NOT_QUALIFIED",
        "CALIBRATION_DUE",
        "EQUIPMENT_DOWN",
        "EQUIPMENT_QUANTITY",
        "HELD",
        "INVALID_TRANSITION",
    }
)


def raise_for_response(response: httpx.Response) -> None:
    """Raise the typed error for a non-2xx answer."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    rule = str(body.get("rule") or "HTTP_ERROR")
    message = str(body.get("message") or response.text or response.reason_phrase)
    args = (response.status_code, rule, message, body.get("object"), body.get("detail"))
    status = response.status_code
    if status == 401:
        raise MesAuthError(*args)
    if status == 403:
        raise MesForbidden(*args)
    if status == 404:
        raise MesNotFound(*args)
    if rule in RULE_CODES:
        raise MesRuleViolation(*args)
    if status == 409:
        raise MesConflict(*args)
    if status == 422:
        raise MesValidationError(*args)
    raise MesClientError(*args)
