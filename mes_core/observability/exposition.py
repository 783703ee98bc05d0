"""``GET /metrics`` in the Prometheus text format, and the one call that installs it.

``install(app)`` adds the metrics middleware and the ``/metrics`` route to the MES app. The
open-holds gauge is not kept in memory (a hold placed by one uvicorn worker and released by
another would leave each worker's count wrong): it is read from the database at scrape time
through the ``open_holds`` callable the app factory passes in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from mes_core.observability.middleware import MetricsMiddleware

OpenHoldsProvider = Callable[[], Mapping[str, int]]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class OpenHoldsCollector:
    """``mestwin_open_holds{object}`` read at scrape time (PRODUCT.md rule 5: what is on
    hold does not move until QA disposes it, so a growing figure is work stuck on QA)."""

    def __init__(self, provider: OpenHoldsProvider) -> None:
        self.provider = provider

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mestwin_open_holds",
            "Objects (material lots, job orders) on hold right now, awaiting QA disposition.",
            labels=("object",),
        )
        for kind, count in sorted(self.provider().items()):
            family.add_metric((kind,), float(count))
        yield family


def render_metrics(open_holds: OpenHoldsProvider | None = None) -> bytes:
    """The exposition text of this process (or of every worker, in multiprocess mode)."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if open_holds is not None:
        holds = CollectorRegistry(auto_describe=False)
        holds.register(OpenHoldsCollector(open_holds))
        text += generate_latest(holds)
    return bytes(text)


def install(
    app: FastAPI,
    *,
    open_holds: OpenHoldsProvider | None = None,
    access: Sequence[Any] = (),
) -> None:
    """Time every request of ``app`` and serve ``GET /metrics``, to whom the ``access``
    dependencies admit (``mes_core.api.exposure``: loopback clients or a metrics token by
    default)."""

    def metrics() -> Response:
        return Response(render_metrics(open_holds), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(
        "/metrics", metrics, methods=["GET"], include_in_schema=False, dependencies=list(access)
    )
    app.add_middleware(MetricsMiddleware)
