"""The MES's own view of a load test, from two scrapes of its ``/metrics``.

Locust sees latency from outside (network, queueing in the load generator included); the
MES's histogram sees it from inside the app. Side by side they tell whether time goes in
the MES or around it. Percentiles from a histogram are estimates: linear interpolation
inside the bucket the rank falls in (as PromQL's ``histogram_quantile``).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]


@dataclass
class Scrape:
    """Samples of one scrape: ``(name, labels) -> value``, and when it was taken."""

    samples: dict[tuple[str, Labels], float]
    at: float

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)


def parse(text: str, at: float) -> Scrape:
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return Scrape(samples, at)


def scrape(base_url: str, at: float, timeout: float = 10) -> Scrape:
    """Scrape ``base_url/metrics`` (with ``MESTWIN_METRICS_TOKEN`` when set: an MES that
    is not on this host admits a scrape only with it)."""
    token = os.environ.get("MESTWIN_METRICS_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base_url.rstrip('/')}/metrics", timeout=timeout, headers=headers)
    response.raise_for_status()
    return parse(response.text, at)


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets (``+Inf`` last)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its bound is all we know
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass(frozen=True)
class RouteView:
    method: str
    route: str
    requests: float
    errors: float
    mean_ms: float
    p95_ms: float | None
    p99_ms: float | None


@dataclass
class MesView:
    """What the MES measured between two scrapes."""

    seconds: float
    routes: list[RouteView] = field(default_factory=list)
    ingest_accepted: float = 0.0
    ingest_duplicates: float = 0.0
    ingest_batches: float = 0.0
    ingest_lag_p95_s: float | None = None
    spool_depth: dict[str, float] = field(default_factory=dict)
    open_holds: dict[str, float] = field(default_factory=dict)

    @property
    def ingest_rate(self) -> float:
        return self.ingest_accepted / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        return [
            f"ingest: {self.ingest_accepted:.0f} events accepted ({self.ingest_rate:.0f}/s), "
            f"{self.ingest_duplicates:.0f} duplicates, {self.ingest_batches:.0f} batches, "
            f"lag p95 {_fmt(self.ingest_lag_p95_s, 's')}",
            "open holds: "
            + (", ".join(f"{k} {v:.0f}" for k, v in sorted(self.open_holds.items())) or "-"),
            "connector spool depth: "
            + (", ".join(f"{k} {v:.0f}" for k, v in sorted(self.spool_depth.items())) or "-"),
        ]


def _fmt(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.3g} {unit}"


def _delta_buckets(
    before: Scrape, after: Scrape, name: str, labels: dict[str, str]
) -> list[tuple[float, float]]:
    out = []
    for (sample, sample_labels), value in after.samples.items():
        if sample != f"{name}_bucket":
            continue
        as_dict = dict(sample_labels)
        le = as_dict.pop("le", None)
        if le is None or as_dict != labels:
            continue
        old = before.samples.get((sample, sample_labels), 0.0)
        out.append((float(le), value - old))
    return sorted(out)


def mes_view(before: Scrape, after: Scrape) -> MesView:
    """What happened in the MES between ``before`` and ``after``."""
    view = MesView(seconds=after.at - before.at)
    name = "mestwin_http_request_duration_seconds"
    by_route: dict[tuple[str, str], dict[str, float]] = defaultdict(
        lambda: {"count": 0.0, "sum": 0.0, "errors": 0.0}
    )
    for (sample, labels), value in after.samples.items():
        if sample not in (f"{name}_count", f"{name}_sum"):
            continue
        delta = value - before.samples.get((sample, labels), 0.0)
        d = dict(labels)
        key = (d.get("method", ""), d.get("route", ""))
        if sample.endswith("_count"):
            by_route[key]["count"] += delta
            if d.get("status", "").startswith(("4", "5")):
                by_route[key]["errors"] += delta
        else:
            by_route[key]["sum"] += delta
    for (method, route), agg in sorted(by_route.items()):
        if agg["count"] <= 0 or route == "/metrics":
            continue
        merged: dict[float, float] = defaultdict(float)
        statuses = {
            dict(labels).get("status", "")
            for (sample, labels) in after.samples
            if sample == f"{name}_count"
            and dict(labels).get("route") == route
            and dict(labels).get("method") == method
        }
        for status in statuses:
            for bound, count in _delta_buckets(
                before, after, name, {"method": method, "route": route, "status": status}
            ):
                merged[bound] += count
        buckets = sorted(merged.items())
        p95, p99 = quantile(0.95, buckets), quantile(0.99, buckets)
        view.routes.append(
            RouteView(
                method,
                route,
                agg["count"],
                agg["errors"],
                1000 * agg["sum"] / agg["count"],
                None if p95 is None else 1000 * p95,
                None if p99 is None else 1000 * p99,
            )
        )
    view.ingest_accepted = after.value("mestwin_ingest_events_total", outcome="accepted") - (
        before.value("mestwin_ingest_events_total", outcome="accepted")
    )
    view.ingest_duplicates = after.value("mestwin_ingest_events_total", outcome="duplicate") - (
        before.value("mestwin_ingest_events_total", outcome="duplicate")
    )
    view.ingest_batches = after.value("mestwin_ingest_batches_total") - before.value(
        "mestwin_ingest_batches_total"
    )
    view.ingest_lag_p95_s = quantile(
        0.95, _delta_buckets(before, after, "mestwin_ingest_lag_seconds", {})
    )
    for (sample, labels), value in after.samples.items():
        if sample == "mestwin_connector_spool_depth":
            view.spool_depth[dict(labels).get("collector", "")] = value
        elif sample == "mestwin_open_holds":
            view.open_holds[dict(labels).get("object", "")] = value
    return view
