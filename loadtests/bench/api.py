"""``mestwin bench api``: operator transactions/s and p50/p99 latency with Locust.

Product: the MES on PostgreSQL with two uvicorn workers, Locust offering a fixed rate of
operator transactions (count reports and lot consumptions on running operations, each a
real MES transaction: authentication, rule checks, row locks, audit-trail append, commit).
Ceiling: a bare FastAPI endpoint doing one insert (``bare_api``), same database server,
same two workers, same Locust at the same offered rate, measured in the same run. Target
(issue 8): p99 under 50 ms at 200 transactions per second. Locust runs on the same cores as
the servers, as on the project's machines; its own latency is part of both figures.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from loadtests.bench import bare_api
from loadtests.bench.cpu import postgres_cpu_seconds, tree_cpu_seconds
from loadtests.bench.databases import throwaway_postgres
from loadtests.bench.result import BenchResult, Figure
from loadtests.config import Seed
from loadtests.mes import running_mes
from loadtests.mes_metrics import mes_view, scrape
from loadtests.runner import run_locust
from loadtests.seed import JOB_ORDERS_ENV, SEED_ENV, running_job_orders, seed_mes
from loadtests.servers import uvicorn_server
from loadtests.slo import RequestStats

LOCUSTFILE = Path(__file__).with_name("api_locustfile.py")
TRANSACTION = "operator transaction"
TARGET_P99_MS = 50.0
ADMIN_PASSWORD = "bench-admin"


@dataclass(frozen=True)
class CpuPerTransaction:
    """CPU milliseconds per transaction over a Locust run: the server's workers, the
    database's backends (less bound to the machine's load than the latencies)."""

    server_ms: float
    postgres_ms: float

    def __str__(self) -> str:
        return f"server workers {self.server_ms:.2f} ms, PostgreSQL {self.postgres_ms:.2f} ms"


def _locust(host: str, cls: str, rate: float, users: int, seconds: float, out: Path,
            env: dict[str, str], server_pid: int, database: str,
            ) -> tuple[RequestStats, CpuPerTransaction]:  # fmt: skip
    cpu_before = (tree_cpu_seconds(server_pid), postgres_cpu_seconds(database))
    run = run_locust(
        host=host,
        users=users,
        spawn_rate=users,
        run_time_s=seconds,
        out_dir=out,
        locustfile=LOCUSTFILE,
        env={**env, "MESTWIN_BENCH_RATE_PER_USER": str(rate / users)},
        user_classes=[cls],
        name=cls.lower(),
        reset_stats=True,
    )
    cpu_after = (tree_cpu_seconds(server_pid), postgres_cpu_seconds(database))
    row = run.stats.get(TRANSACTION)
    if row is None or row.requests == 0:
        raise RuntimeError(f"{cls}: no '{TRANSACTION}' was made; see {run.log}")
    # Locust's stats are reset once the users have started; the CPU counts the setup
    # requests too (a few per user, against thousands of transactions).
    per = 1000 / row.requests
    cpu = CpuPerTransaction(
        (cpu_after[0] - cpu_before[0]) * per, (cpu_after[1] - cpu_before[1]) * per
    )
    return row, cpu


def _median_run(
    runs: list[tuple[RequestStats, CpuPerTransaction]],
) -> tuple[RequestStats, CpuPerTransaction]:
    """The run whose p99 is the median of the runs' (the upper one of an even count)."""
    return sorted(runs, key=lambda run: run[0].p99_ms)[len(runs) // 2]


def bench_api(
    *, rate: float = 200, users: int = 20, seconds: float = 30, repeats: int = 1
) -> BenchResult:
    """Run the API benchmark at ``rate`` transactions/s offered by ``users`` users, each
    side ``repeats`` times against the same server; the run with the median p99 is shown."""
    with tempfile.TemporaryDirectory(prefix="mestwin-bench-api-") as tmp:
        folder = Path(tmp)
        with throwaway_postgres() as url:
            engine = create_engine(url)
            bare_api.metadata.create_all(engine)
            engine.dispose()
            database = make_url(url).database or ""
            bare_pids: list[int] = []
            with uvicorn_server(
                "loadtests.bench.bare_api:app",
                env={bare_api.DATABASE_URL_ENV: url},
                workers=2,
                health_path="/bare/health",
                log_path=folder / "bare.log",
                pids=bare_pids,
            ) as bare_url:
                bare_runs = [
                    _locust(
                        bare_url,
                        "BareReport",
                        rate,
                        users,
                        seconds,
                        folder,
                        {},
                        bare_pids[0],
                        database,
                    )
                    for _ in range(repeats)
                ]
            mes_pids: list[int] = []
            with running_mes(
                url, admin_password=ADMIN_PASSWORD, workers=2, log_dir=folder, pids=mes_pids
            ) as mes_url:
                manifest = seed_mes(
                    mes_url,
                    Seed(work_units_per_class=users, operators=users),
                    admin_user="admin",
                    admin_password=ADMIN_PASSWORD,
                )
                seed_path = folder / "seed.json"
                manifest.write(seed_path)
                jobs_path = folder / "job-orders.json"
                running_job_orders(mes_url, manifest, users, jobs_path)
                before = scrape(mes_url, time.time())
                mes_runs = [
                    _locust(
                        mes_url,
                        "MesOperator",
                        rate,
                        users,
                        seconds,
                        folder,
                        {SEED_ENV: str(seed_path), JOB_ORDERS_ENV: str(jobs_path)},
                        mes_pids[0],
                        database,
                    )
                    for _ in range(repeats)
                ]
                inside = mes_view(before, scrape(mes_url, time.time()))
    mes, mes_cpu = _median_run(mes_runs)
    bare, bare_cpu = _median_run(bare_runs)
    met = mes.p99_ms < TARGET_P99_MS and mes.rps >= 0.95 * rate and mes.failures == 0
    return BenchResult(
        name="bench api (PostgreSQL, 2 uvicorn workers)",
        command=f"mestwin bench api --rate {rate:g} --users {users} --seconds {seconds:g}"
        f" --repeats {repeats}",
        product=Figure("MES operator transaction p99", mes.p99_ms, "ms", lower_better=True),
        ceiling=Figure("bare FastAPI one-insert endpoint p99", bare.p99_ms, "ms", True),
        target=f"p99 < {TARGET_P99_MS:g} ms at {rate:g} tx/s",
        target_met=met,
        details=[
            (
                "offered",
                f"{rate:g} tx/s by {users} Locust users for {seconds:g} s, {repeats} run(s) a "
                "side; shown: the run with the median p99",
            ),
            (
                "p99 of each run",
                f"MES {', '.join(f'{r.p99_ms:.0f}' for r, _ in mes_runs)} ms; "
                f"bare {', '.join(f'{r.p99_ms:.0f}' for r, _ in bare_runs)} ms",
            ),
            (
                "MES",
                f"{mes.rps:.1f} tx/s achieved, p50 {mes.p50_ms:.0f} ms, p95 {mes.p95_ms:.0f} ms, "
                f"p99 {mes.p99_ms:.0f} ms, {mes.failures} failures of {mes.requests}",
            ),
            (
                "bare",
                f"{bare.rps:.1f} tx/s achieved, p50 {bare.p50_ms:.0f} ms, "
                f"p95 {bare.p95_ms:.0f} ms, p99 {bare.p99_ms:.0f} ms, "
                f"{bare.failures} failures of {bare.requests}",
            ),
            *[
                (
                    f"MES /metrics {r.method} {r.route}",
                    f"{r.requests:.0f} requests, mean {r.mean_ms:.0f} ms, "
                    f"p99 {r.p99_ms or 0:.0f} ms inside the app",
                )
                for r in inside.routes
                if r.route.endswith(("/report", "/consume"))
            ],
            ("CPU per transaction, MES", str(mes_cpu)),
            ("CPU per transaction, bare", str(bare_cpu)),
            ("ratio", "bare p99 / MES p99 (1.0: as fast as the bare endpoint)"),
        ],
    )
