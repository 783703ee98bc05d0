"""``mestwin demo``: the MES end to end on the embedded database, in under half a minute.

Migrates a fresh SQLite database, serves the API on a free port (uvicorn in a thread),
loads a small bottling plant through the client, walks one job order through its routing
(release, dispatch, start, consume, counts from the plant, complete), shows a refusal,
prints the genealogy trace both ways and verifies the audit trail, then stops.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import uvicorn
from rich.console import Console
from rich.table import Table

from mes_core.api.app import DEMO_ADMIN_PASSWORD, create_app
from mes_core.client import MesClient, MesRuleViolation
from mes_core.persistence.migrate import upgrade
from mes_core.schemas.execution import JobOrderCreate
from mes_core.schemas.masterdata import MasterData
from mes_core.schemas.plant_events import CountEvent, StateChangeEvent
from mes_core.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerThread:
    """uvicorn serving an app in a background thread (for the demo and tests)."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the MES API did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def demo_plant(today: date) -> MasterData:
    """A small bottling line: filler and capper, two components, two operators."""
    year = today + timedelta(days=365)
    return MasterData.model_validate(
        {
            "equipment": [
                {"code": "SITE", "name": "Demo site", "level": "site"},
                {"code": "BOTTLING", "level": "area", "parent": "SITE"},
                {"code": "BTL1", "name": "Bottling line 1", "level": "line", "parent": "BOTTLING"},
                {
                    "code": "BTL1-FILLER",
                    "level": "work_unit",
                    "parent": "BTL1",
                    "equipment_class": "Filler",
                    "calibration_due": year.isoformat(),
                },
                {
                    "code": "BTL1-CAPPER",
                    "level": "work_unit",
                    "parent": "BTL1",
                    "equipment_class": "Capper",
                },
            ],
            "materials": [
                {"code": "PREFORM", "name": "PET bottle"},
                {"code": "CAP", "name": "Screw cap"},
                {"code": "JUICE-1L", "name": "Orange juice 1 l"},
            ],
            "routings": [
                {
                    "code": "R-JUICE-1L",
                    "product": "JUICE-1L",
                    "segments": [
                        {
                            "sequence": 1,
                            "name": "Fill",
                            "equipment_class": "Filler",
                            "pru_seconds": 0.5,
                            "skill": "filling",
                            "materials": [{"material": "PREFORM"}],
                            "characteristics": [
                                {
                                    "name": "fill_volume",
                                    "lsl": 995,
                                    "target": 1000,
                                    "usl": 1010,
                                    "unit": "ml",
                                }
                            ],
                        },
                        {
                            "sequence": 2,
                            "name": "Cap",
                            "equipment_class": "Capper",
                            "pru_seconds": 0.4,
                            "skill": "capping",
                            "materials": [{"material": "CAP"}],
                        },
                    ],
                }
            ],
            "persons": [
                {
                    "code": "alice",
                    "name": "Alice (operator)",
                    "roles": ["operator"],
                    "password": "alice",
                    "certifications": [
                        {"skill": "filling", "valid_until": year.isoformat()},
                        {"skill": "capping", "valid_until": year.isoformat()},
                    ],
                },
                {
                    "code": "bob",
                    "name": "Bob (certification expired)",
                    "roles": ["operator"],
                    "password": "bob",
                    "certifications": [
                        {"skill": "capping", "valid_until": (today - timedelta(days=1)).isoformat()}
                    ],
                },
            ],
            "lots": [
                {"code": "PRE-0001", "material": "PREFORM", "quantity": 1000},
                {"code": "CAP-0001", "material": "CAP", "quantity": 1000},
            ],
        }
    )


def run_demo(data_dir: str | None = None, console: Console | None = None) -> int:
    """Run the demo; 0 when every step did what it should."""
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="mestwin-demo-") as tmp:
        folder = Path(data_dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "mestwin-demo.db"
        for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            stale.unlink(missing_ok=True)
        url = f"sqlite:///{db}"
        upgrade(url)
        console.print(f"[bold]MES core demo[/] - database {db}")
        with ServerThread(Settings(database_url=url)) as server:
            console.print(f"API at {server.url} (OpenAPI docs at {server.url}/docs)")
            return _walk(server.url, console)


def _walk(url: str, console: Console) -> int:
    today = datetime.now(UTC).date()
    admin = MesClient(url).login("admin", DEMO_ADMIN_PASSWORD)
    admin.load_master_data(demo_plant(today))
    console.print("loaded the demo plant: bottling line BTL1 (filler, capper)")
    connector = MesClient(url, api_key=admin.create_api_key("demo-connector").api_key)
    alice = MesClient(url).login("alice", "alice")
    bob = MesClient(url).login("bob", "bob")

    jo = "JO-DEMO-1"
    admin.create_job_order(JobOrderCreate(code=jo, product="JUICE-1L", quantity=100))
    admin.release_job_order(jo)
    admin.dispatch_job_order(jo, {1: "BTL1-FILLER", 2: "BTL1-CAPPER"})
    console.print(f"{jo}: created, released, dispatched")

    alice.start_operation(jo, 1)
    alice.consume_lot(jo, 1, "PRE-0001", 100)
    now = datetime.now(UTC)
    events = [
        StateChangeEvent(
            source="demo", sequence=1, work_unit="BTL1-FILLER", timestamp=now, state="running"
        )
    ] + [
        CountEvent(
            source="demo",
            sequence=2 + i,
            work_unit="BTL1-FILLER",
            timestamp=now + timedelta(seconds=i),
            good=10 if i < 9 else 8,
            scrap=0 if i < 9 else 2,
        )
        for i in range(10)
    ]
    first = connector.ingest(events)
    again = connector.ingest(events)
    console.print(
        f"plant events: {first.accepted} accepted; the same batch again: "
        f"{again.accepted} accepted, {again.duplicates} duplicates (rule 6)"
    )
    alice.complete_operation(jo, 1)

    refused = False
    try:
        bob.start_operation(jo, 2)
    except MesRuleViolation as exc:
        refused = exc.rule == "CERTIFICATION"
        console.print(f"[yellow]refused as it should be[/]: {exc.rule} - {exc.message}")

    alice.start_operation(jo, 2)
    alice.consume_lot(jo, 2, "CAP-0001", 98)
    alice.report_quantities(jo, 2, good=97, scrap=1)
    done = alice.complete_operation(jo, 2)

    table = Table(title=f"{jo}: {done.state}")
    for col in ("op", "name", "work unit", "operators", "good", "scrap", "lots"):
        table.add_column(col)
    for op in done.operations:
        table.add_row(
            str(op.sequence),
            op.name,
            op.work_unit or "-",
            ", ".join(op.operators),
            f"{op.good:g}",
            f"{op.scrap:g}",
            ", ".join(f"{c['lot']} x{c['quantity']}" for c in op.consumed),
        )
    console.print(table)
    back = admin.genealogy(f"{jo}-OUT", "backward")
    fwd = admin.genealogy("PRE-0001", "forward")
    console.print(
        "genealogy backward from "
        + back.root
        + ": "
        + ", ".join(f"{n.code} ({n.material}, depth {n.depth})" for n in back.lots)
    )
    console.print(
        "genealogy forward from "
        + fwd.root
        + ": "
        + ", ".join(f"{n.code} ({n.material}, depth {n.depth})" for n in fwd.lots)
    )
    check = admin.verify_audit()
    console.print(f"audit trail: {check.checked} entries, chain intact: {check.ok}")
    ok = (
        refused
        and done.state == "completed"
        and check.ok
        and {n.code for n in back.lots} >= {"PRE-0001", "CAP-0001"}
        and any(n.code == f"{jo}-OUT" for n in fwd.lots)
    )
    console.print("[green]demo OK[/]" if ok else "[red]demo FAILED[/]")
    for c in (admin, connector, alice, bob):
        c.close()
    return 0 if ok else 1
