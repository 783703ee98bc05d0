"""``mestwin bench ingest``: plant events per second persisted by the MES's batch ingest.

Product: the MES (uvicorn, one worker) on a fresh database with a seeded plant; batches of
plant events (counts, state changes, alarms on the seeded work units, as a connector sends
them) posted over HTTP one after the other, bodies serialised beforehand so that the
client's own cost stays out of the figure. Timed from the first request to the last
answer: HTTP, JSON parsing, validation, the insert, applying the new events, the audit
entry and the commit.

Ceiling: the same rows inserted by the bare driver into a copy of ``plant_event`` in the
same database, same batch size, one transaction a batch (``bare_ingest``): a multi-row
``INSERT ... ON CONFLICT DO NOTHING``, as issue 8 defines it. On PostgreSQL the MES COPYs a
batch whose keys are all new (falling back to such an insert otherwise), so there it can
beat this "ceiling" (ratio > 1): the bench also times a bare ``COPY`` of the same rows (the
bare form of that path) and prints the MES's rate beside it; compare the CPU per event
too.

CPU per event: the MES's process and the database's backends (PostgreSQL) over the timed
posts, beside the driver's process and the backends over the bare insert; on a shared
machine these move less than the rates do.

Where the time goes: the same batches are also ingested in process (no HTTP) with the
phases timed apart — validation of the JSON body, ``ingest_batch`` (insert + apply + audit)
and the commit — so that a miss can be pinned to its phase.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from loadtests.bench.bare_ingest import bare_insert
from loadtests.bench.cpu import postgres_cpu_seconds, tree_cpu_seconds
from loadtests.bench.databases import throwaway_postgres, throwaway_sqlite
from loadtests.bench.result import BenchResult, Figure
from loadtests.config import Seed
from loadtests.mes import running_mes
from loadtests.seed import seed_mes

TARGET_PG_EVENTS_S = 20_000
TARGET_RATIO = 0.3
ADMIN_PASSWORD = "bench-admin"


def make_events(source: str, n: int, work_units: list[str], seed: int = 1) -> list[dict[str, Any]]:
    """``n`` events of one source: 75 % counts, 20 % state changes, 5 % alarms, spread
    over ``work_units``, stamped a millisecond apart ending now."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(milliseconds=n)
    states = ("running", "idle", "blocked", "starved", "running", "running")
    events: list[dict[str, Any]] = []
    for i in range(n):
        base = {
            "source": source,
            "sequence": i + 1,
            "work_unit": rng.choice(work_units),
            "timestamp": (start + timedelta(milliseconds=i)).isoformat(),
        }
        roll = rng.random()
        if roll < 0.75:
            events.append({**base, "kind": "count", "good": rng.randint(1, 5), "scrap": 0})
        elif roll < 0.95:
            events.append({**base, "kind": "state", "state": rng.choice(states), "reason": ""})
        else:
            events.append({**base, "kind": "alarm", "alarm": "jam", "severity": 600})
    return events


def _rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    received = datetime.now(UTC)
    return [
        {
            "source": e["source"],
            "sequence": e["sequence"],
            "kind": e["kind"],
            "work_unit": e["work_unit"],
            "ts": datetime.fromisoformat(e["timestamp"]),
            "received_at": received,
            "state": e.get("state"),
            "reason": e.get("reason"),
            "good": e.get("good"),
            "scrap": e.get("scrap"),
            "alarm": e.get("alarm"),
            "severity": e.get("severity"),
            "message": "" if e["kind"] == "alarm" else None,
            "active": True if e["kind"] == "alarm" else None,
        }
        for e in events
    ]


def _bodies(events: list[dict[str, Any]], batch: int) -> list[bytes]:
    return [
        json.dumps({"events": events[at : at + batch]}).encode()
        for at in range(0, len(events), batch)
    ]


def post_batches(url: str, api_key: str, bodies: list[bytes]) -> float:
    """Seconds to post ``bodies`` one after the other (each must be accepted)."""
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=300) as client:
        started = time.perf_counter()
        for body in bodies:
            response = client.post("/api/v1/plant-events/batch", content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:300]}")
        return time.perf_counter() - started


def phase_breakdown(
    database_url: str, bodies: list[bytes], profile_top: int = 0
) -> dict[str, float]:
    """Milliseconds per batch spent in each phase of the ingest, in process (no HTTP);
    with ``profile_top`` > 0 also print that many functions by cumulative time (cProfile)."""
    import cProfile
    import pstats

    from mes_core.persistence import ingest
    from mes_core.persistence.db import make_engine, make_session_factory
    from mes_core.persistence.security import Actor
    from mes_core.schemas.plant_events import PlantEventBatch

    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    actor = Actor(name="bench", roles=frozenset({"integration"}))
    totals = {"validate": 0.0, "ingest_batch": 0.0, "commit": 0.0}
    profiler = cProfile.Profile() if profile_top > 0 else None
    try:
        if profiler is not None:
            profiler.enable()
        for body in bodies:
            t0 = time.perf_counter()
            batch = PlantEventBatch.model_validate_json(body)
            t1 = time.perf_counter()
            with factory() as session:
                ingest.ingest_batch(session, batch, actor=actor)
                t2 = time.perf_counter()
                session.commit()
            t3 = time.perf_counter()
            totals["validate"] += t1 - t0
            totals["ingest_batch"] += t2 - t1
            totals["commit"] += t3 - t2
    finally:
        if profiler is not None:
            profiler.disable()
        engine.dispose()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile_top)
    return {phase: 1000 * seconds / len(bodies) for phase, seconds in totals.items()}


def _cpu(client_us: float, database_us: float | None, client: str = "driver") -> str:
    if database_us is None:  # SQLite: the database works in the client's process
        return f"{client} {client_us:.1f} us"
    return (
        f"{client} {client_us:.1f} us + PostgreSQL backends {database_us:.1f} us "
        f"= {client_us + database_us:.1f} us"
    )


@contextmanager
def _database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "postgresql":
        with throwaway_postgres() as url:
            yield url
    else:
        with throwaway_sqlite(folder) as url:
            yield url


def bench_ingest(
    backend: str, *, events: int, batch: int, work_units: int = 200, profile_top: int = 0
) -> BenchResult:
    """Run the ingest benchmark on ``backend`` (``postgresql`` or ``sqlite``)."""
    label = "PostgreSQL" if backend == "postgresql" else "SQLite"
    with tempfile.TemporaryDirectory(prefix="mestwin-bench-") as tmp:
        folder = Path(tmp)
        pids: list[int] = []
        with (
            _database(backend, folder) as url,
            running_mes(
                url, admin_password=ADMIN_PASSWORD, workers=1, log_dir=folder, pids=pids
            ) as mes,
        ):
            manifest = seed_mes(
                mes,
                Seed(work_units_per_class=max(1, work_units), operators=1, lot_quantity=1),
                admin_user="admin",
                admin_password=ADMIN_PASSWORD,
            )
            units = manifest.packers
            warm = _bodies(make_events(f"bench:{manifest.prefix}:warm", batch, units, 2), batch)
            post_batches(mes, manifest.integration_api_key, warm)
            stream = make_events(f"bench:{manifest.prefix}:main", events, units, 1)
            bodies = _bodies(stream, batch)
            # CPU per event: less bound to the load of a shared machine than the rate.
            database = make_url(url).database if backend == "postgresql" else None
            mes_cpu = tree_cpu_seconds(pids[0])
            db_cpu = postgres_cpu_seconds(database) if database else 0.0
            seconds = post_batches(mes, manifest.integration_api_key, bodies)
            mes_us = 1e6 * (tree_cpu_seconds(pids[0]) - mes_cpu) / events
            db_us = 1e6 * (postgres_cpu_seconds(database) - db_cpu) / events if database else None
            product = events / seconds
            bare = bare_insert(url, _rows(stream), batch)
            ceiling = bare.rows_per_s
            # Beside the ceiling, the bare form of the MES's own first path.
            bare_copy = (
                bare_insert(url, _rows(stream), batch, copy=True)
                if backend == "postgresql"
                else None
            )
            extra = make_events(f"bench:{manifest.prefix}:phases", min(events, 10 * batch), units)
            phases = phase_breakdown(url, _bodies(extra, batch), profile_top)
    target_met: bool | None
    ratio = product / ceiling
    if backend == "postgresql":
        target = f">= {TARGET_PG_EVENTS_S:,} events/s and >= {TARGET_RATIO} of bare"
        target_met = product >= TARGET_PG_EVENTS_S and ratio >= TARGET_RATIO
    else:
        target = f">= {TARGET_RATIO} of bare"
        target_met = ratio >= TARGET_RATIO
    per_batch = 1000 * seconds / (events / batch)
    return BenchResult(
        name=f"bench ingest ({label})",
        command=f"mestwin bench ingest --backend {backend} --events {events} --batch {batch}",
        product=Figure("MES batch ingest over HTTP, 1 uvicorn worker", product, "events/s"),
        ceiling=Figure("bare executemany insert of the same rows", ceiling, "rows/s"),
        target=target,
        target_met=target_met,
        details=[
            ("events", f"{events:,} in batches of {batch:,} over {len(units)} work units"),
            ("time per batch over HTTP", f"{per_batch:.1f} ms"),
            ("CPU per event, MES over HTTP", _cpu(mes_us, db_us, "MES worker")),
            ("CPU per row, bare insert", _cpu(bare.driver_us_per_row, bare.database_us_per_row)),
            *(
                [
                    (
                        "bare COPY of the same rows (the MES's path for new keys)",
                        f"{bare_copy.rows_per_s:,.0f} rows/s; MES / bare COPY "
                        f"{product / bare_copy.rows_per_s:.2f}; CPU per row "
                        + _cpu(bare_copy.driver_us_per_row, bare_copy.database_us_per_row),
                    )
                ]
                if bare_copy is not None
                else []
            ),
            (
                "in process, per batch (no HTTP)",
                ", ".join(f"{phase} {ms:.1f} ms" for phase, ms in phases.items()),
            ),
        ],
    )
