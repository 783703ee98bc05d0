"""Who may read ``/metrics`` (issue 21, item 13).

The scrape endpoint tells request rates, routes, ingest lag and open holds: not for
anyone on the plant network by default. ``MESTWIN_METRICS_PUBLIC`` chooses:

- ``loopback`` (default): open to clients on this host (a Prometheus or agent beside the
  MES); from elsewhere only with the metrics token.
- ``true``: open to every client (a network where the operator wants it so).
- ``false``: only with the metrics token, from anywhere.

The metrics token is ``MESTWIN_METRICS_TOKEN``, sent as ``Authorization: Bearer <token>``
(Prometheus ``authorization: {credentials: ...}``). Behind a reverse proxy on the same
host every client looks local: there, set ``false`` and give the scraper the token.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import Request

from mes_core.domain.errors import NotAuthenticated
from mes_core.settings import Settings


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def metrics_access(request: Request) -> None:
    """A dependency refusing (401) a scrape the settings do not admit."""
    settings: Settings = request.app.state.settings
    policy = settings.metrics_public
    if policy == "true":
        return
    if policy == "loopback" and is_loopback(request.client.host if request.client else None):
        return
    token = settings.metrics_token
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if (
        token is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode())
    ):
        return
    raise NotAuthenticated(
        "/metrics needs the metrics token (MESTWIN_METRICS_TOKEN) from this address "
        f"(MESTWIN_METRICS_PUBLIC={policy})"
    )
