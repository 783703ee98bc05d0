"""Locust users behaving like a plant's people and systems against the MES API.

- ``Operator``: a supervisor creates, releases and dispatches a job order for them; they
  start each operation, consume a raw-material lot, report counts and complete, one
  transaction per pacing tick (as a person at a terminal would), then the supervisor closes.
- ``QualityInspector``: reviews running job orders and records fill-weight results.
- ``Erp``: imports B2MML schedules of a few planned job orders at a time (integration key).
- ``Dashboard``: polls job orders, equipment states and held lots.
- ``Connector``: posts batches of plant events like ``mes_core.connectors.opcua``,
  reporting its spool depth in the ``X-Mestwin-Spool-Depth`` header.

Weights and pace come from the load profile (``MESTWIN_LOADTEST_PROFILE``, default
``loadtests/profile.yaml``); codes and credentials from the seed manifest
(``MESTWIN_LOADTEST_SEED``), written by ``mestwin loadtest`` after seeding the MES through
``mes_core.client``. Locust runs on gevent, so the users speak HTTP through Locust's own
``HttpUser`` session (never an asyncio client; locust issue 1251). Request names are the
ones the profile's per-request SLOs refer to.
"""

from __future__ import annotations

import itertools
import os
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from locust import HttpUser, constant_pacing, events, task

from loadtests.config import load_profile
from loadtests.erp_schedule import schedule_document
from loadtests.seed import SEED_ENV, SeedManifest

PROFILE = load_profile()
API = "/api/v1"


def _manifest() -> SeedManifest:
    path = os.environ.get(SEED_ENV)
    if not path:
        raise RuntimeError(
            f"{SEED_ENV} is not set: run the load test through `mestwin loadtest`, or point "
            "it at the seed manifest that command wrote (copy it to worker hosts)"
        )
    return SeedManifest.read(Path(path))


_SEED: SeedManifest | None = None


def seed() -> SeedManifest:
    global _SEED
    if _SEED is None:
        _SEED = _manifest()
    return _SEED


@events.init.add_listener
def _check_seed(environment: Any, **_: Any) -> None:
    # Fail at start-up, not on the first request of every user. A master only aggregates
    # and needs no seed; its workers do.
    if type(environment.runner).__name__ != "MasterRunner":
        try:
            seed()
        except (RuntimeError, OSError, ValueError, TypeError) as exc:
            raise SystemExit(f"mestwin load test: {exc}") from None


def _auth(person: str) -> dict[str, str]:
    """The bearer header of ``person`` (logged in once, at seeding)."""
    token = seed().tokens.get(person)
    if not token:
        raise RuntimeError(f"the seed manifest holds no token for {person}")
    return {"Authorization": f"Bearer {token}"}


def _rule(response: Any) -> str:
    """The ``rule`` of an MES error body ('' when the body is not one)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("rule", "")) if isinstance(body, dict) else ""


_operator_numbers = itertools.count()


class Operator(HttpUser):
    """An operator at a terminal, working job orders through the two-operation routing."""

    weight = PROFILE.users.operator.weight
    wait_time = constant_pacing(PROFILE.users.operator.pace_seconds)

    def on_start(self) -> None:
        s = seed()
        person = s.operators[next(_operator_numbers) % len(s.operators)]
        self.operator = _auth(person)
        self.supervisor = _auth(s.supervisor)
        self.steps: list[tuple[str, str, str, dict[str, Any], dict[str, str]]] = []

    def _plan_job_order(self) -> None:
        s = seed()
        code = f"{s.prefix}-JO-{uuid.uuid4().hex[:12]}"
        jo = f"{API}/job-orders/{code}"
        mixer, filler = random.choice(s.mixers), random.choice(s.fillers)
        sup, op = self.supervisor, self.operator
        self.steps = [
            ("supervisor: create job order", f"{API}/job-orders", "POST",
             {"code": code, "product": s.product, "quantity": 100}, sup),
            ("supervisor: release job order", f"{jo}/release", "POST", {}, sup),
            ("supervisor: dispatch job order", f"{jo}/dispatch", "POST",
             {"work_units": {"1": mixer, "2": filler}}, sup),
            ("operator: start operation", f"{jo}/operations/1/start", "POST", {}, op),
            ("operator: consume lot", f"{jo}/operations/1/consume", "POST",
             {"lot": random.choice(s.lots), "quantity": 10}, op),
            ("operator: report counts", f"{jo}/operations/1/report", "POST", {"good": 50}, op),
            ("operator: report counts", f"{jo}/operations/1/report", "POST",
             {"good": 48, "scrap": 2}, op),
            ("operator: complete operation", f"{jo}/operations/1/complete", "POST", {}, op),
            ("operator: start operation", f"{jo}/operations/2/start", "POST", {}, op),
            ("operator: report counts", f"{jo}/operations/2/report", "POST",
             {"good": 97, "scrap": 1}, op),
            ("operator: complete operation", f"{jo}/operations/2/complete", "POST", {}, op),
            ("supervisor: close job order", f"{jo}/close", "POST", {}, sup),
        ]  # fmt: skip

    @task
    def next_transaction(self) -> None:
        if not self.steps:
            self._plan_job_order()
        name, url, method, body, headers = self.steps.pop(0)
        with self.client.request(
            method, url, json=body, headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code >= 400:
                # The job order is in an unknown state now: abandon it and start afresh,
                # rather than let one refusal cascade into a dozen.
                self.steps = []
                if response.status_code == 409 and _rule(response) == "HELD":
                    # QA's SPC put it on hold (rule 5): the MES did its job; the job order
                    # waits for a disposition, the operator moves on.
                    response.success()
                    return
                response.failure(f"{response.status_code}: {response.text[:200]}")


class QualityInspector(HttpUser):
    """QA reviewing running job orders and recording fill-weight results of their filling
    operation (in spec; SPC rules may still hold a job order now and then, as in a plant)."""

    weight = PROFILE.users.quality.weight
    wait_time = constant_pacing(PROFILE.users.quality.pace_seconds)

    def on_start(self) -> None:
        self.auth = _auth(seed().quality)

    @task
    def review_and_record(self) -> None:
        s = seed()
        response = self.client.get(
            f"{API}/job-orders",
            params={"state": "running", "limit": 20},
            headers=self.auth,
            name="quality: running job orders",
        )
        filling = []
        if response.status_code == 200:
            filling = [
                job["code"]
                for job in response.json()
                if job["code"].startswith(s.prefix)
                and any(o["sequence"] == 2 and o["state"] == "running" for o in job["operations"])
            ]
        if filling:
            value = min(max(random.gauss(s.target, (s.usl - s.lsl) / 12), s.lsl), s.usl)
            self.client.post(
                f"{API}/quality/measurements",
                json={
                    "job_order": random.choice(filling),
                    "operation": 2,
                    "characteristic": s.characteristic,
                    "value": round(value, 2),
                },
                headers=self.auth,
                name="quality: record result",
            )
        self.client.get(
            f"{API}/material-lots/{random.choice(s.lots)}",
            headers=self.auth,
            name="quality: material lot",
        )


class Erp(HttpUser):
    """The ERP sending schedules of a few planned job orders (B2MML, integration key)."""

    weight = PROFILE.users.erp.weight
    wait_time = constant_pacing(PROFILE.users.erp.pace_seconds)

    @task
    def import_schedule(self) -> None:
        s = seed()
        document, _ = schedule_document(s, 3)
        self.client.post(
            f"{API}/erp/schedules",
            data=document,
            headers={"X-API-Key": s.integration_api_key, "Content-Type": "application/xml"},
            name="erp: import schedule",
        )


class Dashboard(HttpUser):
    """A shop-floor dashboard polling what it shows."""

    weight = PROFILE.users.dashboard.weight
    wait_time = constant_pacing(PROFILE.users.dashboard.pace_seconds)

    def on_start(self) -> None:
        self.auth = _auth(seed().supervisor)
        self.views = itertools.cycle(
            [
                ("dashboard: job orders", f"{API}/job-orders", {"limit": 50}),
                ("dashboard: equipment", f"{API}/equipment", {"level": "work_unit"}),
                ("dashboard: held lots", f"{API}/material-lots", {"status": "on_hold"}),
            ]
        )

    @task
    def poll(self) -> None:
        name, url, params = next(self.views)
        self.client.get(url, params=params, headers=self.auth, name=name)


def plant_events(source: str, first: int, n: int, work_units: list[str]) -> list[dict[str, Any]]:
    """``n`` plant events of one source from sequence ``first``: mostly counts, some state
    changes and alarms, as a line's connector sends them."""
    now = datetime.now(UTC).isoformat()
    out: list[dict[str, Any]] = []
    for seq in range(first, first + n):
        unit = random.choice(work_units)
        base = {"source": source, "sequence": seq, "work_unit": unit, "timestamp": now}
        roll = random.random()
        if roll < 0.75:
            out.append({**base, "kind": "count", "good": random.randint(0, 5), "scrap": 0})
        elif roll < 0.95:
            state = random.choice(("running", "idle", "blocked", "starved", "down"))
            out.append({**base, "kind": "state", "state": state, "reason": ""})
        else:
            out.append({**base, "kind": "alarm", "alarm": "jam", "severity": 600, "active": True})
    return out


class Connector(HttpUser):
    """The OPC UA connector's batch ingest (one source per simulated connector)."""

    weight = PROFILE.users.connector.weight
    wait_time = constant_pacing(PROFILE.users.connector.pace_seconds)

    def on_start(self) -> None:
        s = seed()
        self.source = f"loadtest:{s.prefix}:{uuid.uuid4().hex[:8]}"
        self.sequence = 1
        self.headers = {
            "X-API-Key": s.integration_api_key,
            "X-Mestwin-Spool-Depth": "0",
            "X-Mestwin-Collector": self.source,
        }

    @task
    def ingest(self) -> None:
        n = PROFILE.users.connector.batch_events
        batch = plant_events(self.source, self.sequence, n, seed().packers)
        self.sequence += n
        self.client.post(
            f"{API}/plant-events/batch",
            json={"events": batch},
            headers=self.headers,
            name="connector: ingest batch",
        )
