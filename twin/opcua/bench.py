"""``mestwin bench opcua``: the product (twin -> OPC UA -> connector -> MES) beside the
raw OPC UA ceiling, in one run on this machine.

Product, at rising rates: a generated plant of ``work_units`` work units (10 per line by
default 200 in all), each with ``values`` process values sampled at a period that makes
the asked number of tag changes per second, running paced at speed 1 (plus the PackML
state and counter changes of the production itself). The twin (engine thread + OPC UA
server) runs here; the connector (``mestwin connect``) and the MES (``mestwin serve``, on
a fresh PostgreSQL database, or SQLite when no server is configured) run as processes of
their own, as in a plant. The connector is subscribed before the engine starts, so every
value the server writes must arrive: a step is *clean* when the connector received every
notification (``received == initial values + writes``), made events of all of them and
the MES persisted every event (``sent == produced``), and all of that within ``MAX_LAG_S``
of the engine stopping. The climb stops at the first step that is not clean.

Figures: tag changes per second written by the server and carried to the MES without
loss, and the plant events per second the MES persisted. The ratio line compares the best
clean product rate of tag changes with the raw ceiling's notifications per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from plant_models.schema import PlantModel
from twin.opcua.bench_raw import cpu_seconds, free_port, quiet_asyncua
from twin.opcua.runtime import ServedPlant, ServeOptions

CONNECTOR_TAGS = (
    "State",
    "StopReason",
    "UnitMode",
    "ProdProcessedCount",
    "ProdDefectiveCount",
    "JobOrderID",
    "MaterialLotID",
    "ProductID",
)
"""The tags ``mes_core.connectors.opcua`` subscribes to, besides process values."""
MAX_LAG_S = 3.0
DRAIN_LIMIT_S = 20.0
"""How long a lagging step may take to drain before it counts what arrived as lost."""
"""A step lags when the MES has not persisted everything this long after the engine stops."""
ADMIN_PASSWORD = "bench-admin"
BATCH_SIZE = int(os.environ.get("MESTWIN_BENCH_BATCH", "2000"))
POSTGRES_ENVS = ("MESTWIN_BENCH_POSTGRES_URL", "MESTWIN_TEST_POSTGRES_URL")


def bench_plant(work_units: int, values: int, rate: float, per_line: int = 20) -> PlantModel:
    """A plant whose process values alone make ``rate`` tag changes per second."""
    period = work_units * values / rate
    lines = []
    products = []
    for li in range((work_units + per_line - 1) // per_line):
        count = min(per_line, work_units - li * per_line)
        code = f"B{li + 1:02d}"
        lines.append(
            {
                "code": code,
                "continuous_product": f"P{code}",
                "work_units": [
                    {
                        "code": f"{code}-W{wi + 1:02d}",
                        "equipment_class": "Station",
                        "cycle_time": {"kind": "normal", "mean": 2.0, "sd": 0.2, "min": 1.0},
                        "scrap_probability": 0.01,
                        "process_values": [
                            {
                                "name": f"V{vi + 1:02d}",
                                "unit": "degC",
                                "distribution": {"kind": "normal", "mean": 50.0, "sd": 1.0},
                                "update_period": period,
                            }
                            for vi in range(values)
                        ],
                    }
                    for wi in range(count)
                ],
            }
        )
        products.append(
            {
                "id": f"P{code}",
                "material": "FG",
                "line": code,
                "segments": [
                    {"id": f"S{wi + 1:02d}", "equipment_class": "Station", "standard_run_time": 2}
                    for wi in range(count)
                ],
            }
        )
    return PlantModel.model_validate(
        {
            "plant": {"code": "BENCH"},
            "lines": lines,
            "materials": [{"id": "FG"}],
            "products": products,
        }
    )


@dataclass(frozen=True)
class ProductStep:
    asked_per_s: float
    seconds: float
    written: int
    received: int
    expected_received: int
    produced: int
    persisted: int
    lag_s: float
    cpu_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """CPU seconds of the twin (engine + server), the connector and the MES processes
    from the engine's start until the step drained (PostgreSQL's own not counted)."""

    def cpu_ms_per_1000(self) -> tuple[float, ...]:
        """CPU milliseconds per 1,000 tag changes, per process: what the step cost whatever
        else ran on the machine (the figure that says which process bounds the product)."""
        k = self.written / 1000
        return tuple(c * 1000 / k for c in self.cpu_s) if k else (0.0, 0.0, 0.0)

    @property
    def tags_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.persisted / (self.seconds + self.lag_s) if self.seconds > 0 else 0.0

    @property
    def lost(self) -> int:
        return max(0, self.expected_received - self.received) + max(
            0, self.produced - self.persisted
        )

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.lag_s <= MAX_LAG_S


def _mestwin(*args: str) -> list[str]:
    return [sys.executable, "-c", "from mestwin.cli import main; main()", *args]


@contextlib.contextmanager
def _database(folder: Path) -> Any:
    """A fresh PostgreSQL database when a server is configured, else a SQLite file."""
    base = next((os.environ[n] for n in POSTGRES_ENVS if os.environ.get(n)), None)
    if base is None:
        yield f"sqlite:///{folder / 'mes.db'}", "SQLite"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"mestwin_bench_opcua_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield (
                make_url(base).set(database=name).render_as_string(hide_password=False),
                ("PostgreSQL"),
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


class _Mes:
    """``mestwin serve`` on a fresh database, with an integration API key."""

    def __init__(self, database_url: str, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "MESTWIN_DATABASE_URL": database_url,
            "MESTWIN_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        self.log = folder / "mes.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        import httpx

        from mes_core.client import MesClient

        with self.log.open("ab") as log:
            subprocess.run(
                _mestwin("db", "upgrade"), env=self.env, stdout=log, stderr=log, check=True
            )
            self.proc = subprocess.Popen(
                _mestwin("serve", "--port", str(self.port)),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the MES did not start; see {self.log}")
            time.sleep(0.2)
        with MesClient(self.url).login("admin", ADMIN_PASSWORD) as admin:
            return admin.create_api_key("bench-connector", "integration").api_key

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)


def bench_connector(
    url: str, mes_url: str, key: str, spool: Path, stats: Path, log: Path
) -> subprocess.Popen[bytes]:
    """A ``mestwin connect`` process of the product benchmark: one OPC UA endpoint to the
    MES, no dispatch, its statistics to ``stats``, its stderr to ``log``."""
    return subprocess.Popen(
        _mestwin(
            "connect",
            "--opcua",
            url,
            "--mes",
            mes_url,
            "--spool",
            str(spool),
            "--stats",
            str(stats),
            "--no-dispatch",
            "--batch-size",
            str(BATCH_SIZE),
        ),
        env={**os.environ, "MESTWIN_API_KEY": key},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        start_new_session=True,
    )


def _stats(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data


async def _product_step(
    rate: float, seconds: float, work_units: int, values: int, mes: _Mes, key: str, folder: Path
) -> ProductStep:
    model = bench_plant(work_units, values, rate)
    url = f"opc.tcp://127.0.0.1:{free_port()}"
    stats = folder / f"stats-{rate:g}.json"
    options = ServeOptions(endpoint=url, speed=1.0, auto_dispatch=False)
    plant = ServedPlant(model, options, autorun=False)
    await plant.start()
    subscribed = [
        nodeid
        for server in plant.servers
        if server.nodes is not None
        for wu in server.nodes.work_units.values()
        for nodeid in (
            *(wu.variables[t] for t in CONNECTOR_TAGS),
            *wu.process_values.values(),
        )
    ]
    nodes = len(subscribed)
    connector = bench_connector(
        url,
        mes.url,
        key,
        folder / f"spool-{rate:g}.sqlite",
        stats,
        folder / f"connector-{rate:g}.log",
    )
    try:
        deadline = time.monotonic() + 120
        # Subscribed, and the initial value of every node received and sent.
        while not (_stats(stats).get("connected") and _stats(stats).get("received", 0) >= nodes):
            if time.monotonic() > deadline or connector.poll() is not None:
                raise RuntimeError(f"the connector did not subscribe; see {folder}")
            await asyncio.sleep(0.2)
        publisher = plant.publisher
        assert publisher is not None
        written0 = publisher.writes_to(subscribed)
        received0 = int(_stats(stats)["received"])
        assert mes.proc is not None
        pids = (connector.pid, mes.proc.pid)
        cpu0 = (time.process_time(), *(cpu_seconds(p) for p in pids))
        plant.start_engine()
        started = time.monotonic()
        await asyncio.sleep(seconds)
        await plant.halt()
        ran = time.monotonic() - started
        written = publisher.writes_to(subscribed) - written0
        stopped = time.monotonic()
        lag = 0.0
        last: dict[str, Any] = {}
        while time.monotonic() - stopped < DRAIN_LIMIT_S:
            last = _stats(stats)
            done = last.get("received", 0) - received0 >= written and last.get(
                "sent", 0
            ) == last.get("produced", -1)
            if done:
                lag = time.monotonic() - stopped
                break
            await asyncio.sleep(0.05)
        else:
            lag = time.monotonic() - stopped
        cpu1 = (time.process_time(), *(cpu_seconds(p) for p in pids))
        used = tuple(b - a for a, b in zip(cpu0, cpu1, strict=True))
        return ProductStep(
            asked_per_s=rate,
            seconds=ran,
            written=written,
            received=int(last.get("received", 0)) - received0,
            expected_received=written,
            produced=int(last.get("produced", 0)),
            persisted=int(last.get("sent", 0)),
            lag_s=lag,
            cpu_s=(used[0], used[1], used[2]),
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(connector.pid, 15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            connector.wait(15)
        await plant.stop()


async def run_product(
    rates: tuple[float, ...] = (2_500, 5_000, 10_000),
    seconds: float = 6.0,
    work_units: int = 200,
    values: int = 10,
    echo: Any = print,
    budget_s: float = float("inf"),
) -> tuple[list[ProductStep], str]:
    """Rising rates until a step loses or lags; returns the steps and the database kind.

    No step starts once ``budget_s`` seconds of steps have passed (said so in the output).
    """
    quiet_asyncua()

    async def step(rate: float, mes: _Mes, key: str, folder: Path) -> ProductStep:
        return await _product_step(rate, seconds, work_units, values, mes, key, folder)

    return await climb("opcua", rates, step, format_step, echo, budget_s, unit="tags/s")


class _Step(Protocol):
    @property
    def clean(self) -> bool: ...


StepT = TypeVar("StepT", bound=_Step)


async def climb(
    name: str,
    rates: tuple[float, ...],
    run_step: Callable[[float, _Mes, str, Path], Awaitable[StepT]],
    format_step: Callable[[StepT], str],
    echo: Any,
    budget_s: float,
    unit: str = "/s",
) -> tuple[list[StepT], str]:
    """A product bench's climb: one MES (PostgreSQL when configured, else SQLite), then a
    step per rate (``run_step(rate, mes, its API key, a scratch folder)``), each printed,
    until a step is not clean or ``budget_s`` seconds of steps have passed (said so).
    The steps and the database kind."""
    steps: list[StepT] = []
    with tempfile.TemporaryDirectory(prefix=f"mestwin-bench-{name}-") as tmp:
        folder = Path(tmp)
        with _database(folder) as (db_url, kind):
            mes = _Mes(db_url, folder)
            try:
                key = mes.start()
                began = time.monotonic()
                for rate in rates:
                    if time.monotonic() - began > budget_s:
                        echo(f"  (no step at {rate:.0f} {unit}: {budget_s:.0f} s of steps spent)")
                        break
                    step = await run_step(rate, mes, key, folder)
                    steps.append(step)
                    echo(format_step(step))
                    if not step.clean:
                        break
            finally:
                mes.stop()
    return steps, kind


def best_clean(
    steps: list[StepT], rate: Callable[[StepT], float], kind: str, echo: Any
) -> tuple[StepT | None, str]:
    """The fastest clean step of a climb and, when every step was clean, a note that it
    is not the maximum; with none clean, says so (a ratio of 0) and returns None."""
    clean = [s for s in steps if s.clean]
    if not clean:
        echo(f"product: no step without loss or lag (MES on {kind})")
        echo("ratio: 0.00")
        return None, ""
    limit = "" if len(clean) < len(steps) else " (every step asked was clean: not the maximum)"
    return max(clean, key=rate), limit


def format_step(s: ProductStep) -> str:
    twin, conn, mes = s.cpu_ms_per_1000()
    flag = "" if s.clean else ("  LOSS" if s.lost else "  LAG")
    return (
        f"  asked {s.asked_per_s:>7.0f} tags/s  wrote {s.tags_per_s:>7.0f}/s  "
        f"received {s.received}/{s.expected_received}  events {s.persisted}/{s.produced} "
        f"persisted ({s.events_per_s:.0f}/s)  lag {s.lag_s:.2f} s{flag}\n"
        f"      CPU ms per 1,000 tag changes: twin {twin:.0f}, connector {conn:.0f}, "
        f"MES {mes:.0f}"
    )
