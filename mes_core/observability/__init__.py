"""Prometheus metrics of the MES: request latency by route, ingest rate and lag, the
connectors' spool depth and open holds (issue 8).

The app factory calls :func:`install` once; collectors report their spool depth with the
``X-Mestwin-Spool-Depth`` header on ingest requests or, in process, with
:func:`record_spool_depth`.
"""

from mes_core.observability.exposition import install, render_metrics
from mes_core.observability.holds import open_holds_from
from mes_core.observability.metrics import (
    COLLECTOR_HEADER,
    SPOOL_DEPTH_HEADER,
    record_ingest,
    record_request,
    record_spool_depth,
)
from mes_core.observability.middleware import MetricsMiddleware

__all__ = [
    "COLLECTOR_HEADER",
    "SPOOL_DEPTH_HEADER",
    "MetricsMiddleware",
    "install",
    "open_holds_from",
    "record_ingest",
    "record_request",
    "record_spool_depth",
    "render_metrics",
]
