"""``mes_core.client``: the typed client of the MES API (httpx, sync and async).

The twin, the scenario runner, the dashboards and the load tests talk to the MES only
through this::

    from mes_core.client import MesClient, MesRuleViolation

    mes = MesClient("http://127.0.0.1:8000").login("op1", "secret")
    try:
        mes.start_operation("JO-1", 1, work_unit="FILLER-1")
    except MesRuleViolation as refusal:
        print(refusal.rule, refusal.message)

Responses are the pydantic models of :mod:`mes_core.schemas`.
"""

from mes_core.client._async import AsyncMesClient
from mes_core.client._sync import MesClient
from mes_core.client.errors import (
    MesAuthError,
    MesClientError,
    MesConflict,
    MesForbidden,
    MesNotFound,
    MesRuleViolation,
    MesValidationError,
)

__all__ = [
    "AsyncMesClient",
    "MesAuthError",
    "MesClient",
    "MesClientError",
    "MesConflict",
    "MesForbidden",
    "MesNotFound",
    "MesRuleViolation",
    "MesValidationError",
]
