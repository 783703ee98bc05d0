"""Locust users of ``mestwin bench api``: operator transactions at a fixed offered rate.

``MesOperator``: each user takes a running job order of its own, set up before Locust
starts (``loadtests.seed.running_job_orders``), and reports counts and consumes lots on
its running operation — the operator transactions of a shift — named ``operator
transaction``.
``BareReport``: the same rate of one-insert requests to the bare FastAPI app.
Each user offers ``MESTWIN_BENCH_RATE_PER_USER`` transactions a second as a Poisson
process (:func:`poisson_arrivals`), so users x rate is the offered load whatever the
latency, arriving as a plant's people and systems do: independently, not in step.
(Locust's ``constant_throughput`` keeps the phases the users were spawned with: 20 users
spawned at 20/s offering 10/s each arrive as bursts of 10 requests every 50 ms.)
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from locust import FastHttpUser, User, task

from loadtests.seed import JOB_ORDERS_ENV, SEED_ENV, SeedManifest

RATE_PER_USER = float(os.environ.get("MESTWIN_BENCH_RATE_PER_USER", "10"))

API = "/api/v1"
_numbers = itertools.count()
#: A user more than this late on its schedule (a stall) starts afresh instead of
#: catching up with a burst.
MAX_CATCH_UP_S = 1.0


def poisson_arrivals(rate: float) -> Callable[[User], float]:
    """Open-loop Poisson arrivals at ``rate`` per second for one user: each task starts an
    exponentially distributed time after the previous one *started* (not ended), so the
    offered rate holds whatever the latency; a late user catches up at once."""

    def wait_time(user: User) -> float:
        now = time.monotonic()
        start = getattr(user, "_poisson_next", now)
        if start < now - MAX_CATCH_UP_S:
            start = now
        user._poisson_next = start + random.expovariate(rate)  # type: ignore[attr-defined]
        return max(0.0, user._poisson_next - now)  # type: ignore[attr-defined]

    return wait_time


class MesOperator(FastHttpUser):
    wait_time = poisson_arrivals(RATE_PER_USER)

    def on_start(self) -> None:
        self.seed = SeedManifest.read(Path(os.environ[SEED_ENV]))
        s = self.seed
        number = next(_numbers)
        # A running job order of its own, set up before Locust started (running_job_orders
        # in loadtests.seed), so that the measured window holds operator transactions only.
        jobs = json.loads(Path(os.environ[JOB_ORDERS_ENV]).read_text())
        job = jobs[number % len(jobs)]
        self.code = job["code"]
        self.op = {"Authorization": f"Bearer {s.tokens[job['operator']]}"}

    @task(4)
    def report_counts(self) -> None:
        self.client.post(
            f"{API}/job-orders/{self.code}/operations/1/report",
            json={"good": random.randint(1, 10)},
            headers=self.op,
            name="operator transaction",
        )

    @task(1)
    def consume_lot(self) -> None:
        self.client.post(
            f"{API}/job-orders/{self.code}/operations/1/consume",
            json={"lot": random.choice(self.seed.lots), "quantity": 1},
            headers=self.op,
            name="operator transaction",
        )


class BareReport(FastHttpUser):
    wait_time = poisson_arrivals(RATE_PER_USER)

    @task
    def report(self) -> None:
        self.client.post(
            "/bare/report",
            json={"job_order": "JO-1", "work_unit": "WU-1", "good": random.randint(1, 10)},
            name="operator transaction",
        )
