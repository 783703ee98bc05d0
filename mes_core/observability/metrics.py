"""The MES's own Prometheus series, defined once per process.

Names follow the Prometheus conventions (base units, ``_total`` for counters, ``_seconds``
for durations). Every series here is what a go-live load test reads beside the load
generator's figures:

- ``mestwin_http_request_duration_seconds{method,route,status}``: latency by route template
  (``/api/v1/job-orders/{job_order_id}``, never the concrete path, so cardinality stays
  bounded).
- ``mestwin_ingest_events_total{outcome}``: plant events ingested (``accepted``) or ignored as
  already seen (``duplicate``, enforcement rule 6); its ``rate()`` is the ingest rate.
- ``mestwin_ingest_batches_total``: batches accepted.
- ``mestwin_ingest_lag_seconds``: time from the plant (source timestamp of the newest event
  of a batch) to the MES having committed it.
- ``mestwin_connector_spool_depth{collector}``: events a collector holds in its
  store-and-forward spool, as it last reported.
- ``mestwin_open_holds{object}``: material lots and job orders on hold right now (read from
  the database at scrape time, see :mod:`mes_core.observability.exposition`).

With several uvicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before
the workers start; prometheus-client then shares the series through files and ``/metrics``
aggregates every worker (gauges per their ``multiprocess_mode``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Buckets from 1 ms to 10 s: an operator transaction should sit well under 50 ms (the
# go-live target is p99 < 50 ms), an ingest batch of thousands of events in the 100s of ms.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.035,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# Lag from the plant to the MES: a healthy connector posts within its flush interval (about
# a second); minutes mean it is replaying its spool after an outage.
LAG_BUCKETS: tuple[float, ...] = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)

REQUEST_DURATION = Histogram(
    "mestwin_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status code.",
    ("method", "route", "status"),
    buckets=LATENCY_BUCKETS,
)

INGEST_EVENTS = Counter(
    "mestwin_ingest_events",
    "Plant events received by the batch ingest, by outcome (accepted or duplicate).",
    ("outcome",),
)

INGEST_BATCHES = Counter(
    "mestwin_ingest_batches",
    "Plant event batches committed by the batch ingest.",
)

INGEST_LAG = Histogram(
    "mestwin_ingest_lag_seconds",
    "Seconds from the source timestamp of a batch's newest event to its commit in the MES.",
    buckets=LAG_BUCKETS,
)

CONNECTOR_SPOOL_DEPTH = Gauge(
    "mestwin_connector_spool_depth",
    "Events held in a collector's store-and-forward spool, as the collector last reported.",
    ("collector",),
    multiprocess_mode="mostrecent",
)

# Header names through which a collector reports its spool depth on each ingest request
# (and, optionally, its own name; otherwise the ``source`` of the batch's events is not
# looked at, to keep the hot path free of parsing).
SPOOL_DEPTH_HEADER = "x-mestwin-spool-depth"
COLLECTOR_HEADER = "x-mestwin-collector"


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request of ``route`` (a template) taking ``seconds``."""
    REQUEST_DURATION.labels(method, route, str(status)).observe(seconds)


def record_ingest(*, accepted: int, duplicates: int, lag_seconds: float | None) -> None:
    """Count one committed ingest batch (``lag_seconds`` None when it cannot be known)."""
    INGEST_BATCHES.inc()
    if accepted:
        INGEST_EVENTS.labels("accepted").inc(accepted)
    if duplicates:
        INGEST_EVENTS.labels("duplicate").inc(duplicates)
    if lag_seconds is not None:
        # A plant clock ahead of the MES clock would give a negative lag; it is clock skew,
        # not speed, so it counts as zero rather than vanishing from the histogram.
        INGEST_LAG.observe(max(lag_seconds, 0.0))


def record_spool_depth(collector: str, depth: int) -> None:
    """Report that ``collector`` holds ``depth`` events in its spool (call it from the
    connector process when it shares the MES process, or send the
    ``X-Mestwin-Spool-Depth`` header with each ingest request, which lands here)."""
    if depth < 0:
        raise ValueError(f"spool depth of {collector!r} cannot be negative: {depth}")
    CONNECTOR_SPOOL_DEPTH.labels(collector).set(depth)
