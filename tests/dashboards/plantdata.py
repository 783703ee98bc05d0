"""A small plant for the dashboard tests, loaded and driven through the MES client only.

Two lines (bottling with three work units, packing with two), a two-step routing with an
inspection characteristic, lots, an operator; one job order running on the filler with
lots consumed, another completed with an output lot (so genealogy has both directions),
and plant events (states, counts) posted through the ingest endpoint like a connector.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from mes_core.client import MesClient
from mes_core.schemas.execution import JobOrderCreate, OutputLot
from mes_core.schemas.masterdata import MasterData
from mes_core.schemas.plant_events import CountEvent, EquipmentState, StateChangeEvent

ADMIN_PASSWORD = "admin-dash-password"
SOURCE = "test:dashboards"
_sequence = itertools.count(1)


def master_data() -> MasterData:
    year = (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
    return MasterData.model_validate(
        {
            "equipment": [
                {"code": "SITE", "name": "Test site", "level": "site"},
                {"code": "AREA", "level": "area", "parent": "SITE"},
                {"code": "BTL1", "name": "Bottling line 1", "level": "line", "parent": "AREA"},
                {"code": "PCK1", "name": "Packing line 1", "level": "line", "parent": "AREA"},
                *[
                    {
                        "code": code,
                        "name": name,
                        "level": "work_unit",
                        "parent": line,
                        "equipment_class": cls,
                        "calibration_due": year,
                    }
                    for code, name, line, cls in (
                        ("BTL1-FILLER", "Filler", "BTL1", "Filler"),
                        ("BTL1-CAPPER", "Capper", "BTL1", "Capper"),
                        ("BTL1-LABELLER", "Labeller", "BTL1", "Labeller"),
                        ("PCK1-CASER", "Case packer", "PCK1", "Caser"),
                        ("PCK1-PALLET", "Palletiser", "PCK1", "Palletiser"),
                    )
                ],
            ],
            "materials": [
                {"code": "PREFORM", "name": "PET bottle"},
                {"code": "CAP", "name": "Screw cap"},
                {"code": "JUICE-1L", "name": "Orange juice 1 l"},
                {"code": "CARTON", "name": "Carton"},
                {"code": "CASE-12", "name": "Case of 12"},
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
                },
                {
                    "code": "R-CASE-12",
                    "product": "CASE-12",
                    "segments": [
                        {
                            "sequence": 1,
                            "name": "Pack",
                            "equipment_class": "Caser",
                            "pru_seconds": 2,
                            "materials": [{"material": "CARTON"}],
                            "characteristics": [
                                {
                                    "name": "case_weight",
                                    "lsl": 11.5,
                                    "target": 12.0,
                                    "usl": 12.5,
                                    "unit": "kg",
                                }
                            ],
                        }
                    ],
                },
            ],
            "persons": [
                {
                    "code": "quinn",
                    "name": "Quinn (QA)",
                    "roles": ["quality"],
                    "password": "quinn",
                    "certifications": [{"skill": "inspection", "valid_until": year}],
                },
                {
                    "code": "alice",
                    "name": "Alice (operator)",
                    "roles": ["operator"],
                    "password": "alice",
                    "certifications": [
                        {"skill": "filling", "valid_until": year},
                        {"skill": "capping", "valid_until": year},
                    ],
                },
            ],
            "lots": [
                {"code": "PRE-0001", "material": "PREFORM", "quantity": 100000},
                {"code": "CAP-0001", "material": "CAP", "quantity": 100000},
                {"code": "PRE-0002", "material": "PREFORM", "quantity": 100000},
                {"code": "CARTON-0001", "material": "CARTON", "quantity": 100000},
            ],
        }
    )


#: Case weights (kg): in control around 12.0, then one above USL 12.5.
CASE_WEIGHTS = [
    12.02, 11.97, 12.05, 11.95, 12.01, 12.03, 11.98, 12.00, 11.96, 12.04,
    12.02, 11.99, 12.01, 11.97, 12.03, 12.00, 11.98, 12.02, 11.99, 12.01,
    12.00, 12.03, 12.8,
]  # fmt: skip


def state(work_unit: str, new: EquipmentState, at: datetime, reason: str = "") -> StateChangeEvent:
    return StateChangeEvent(
        source=SOURCE,
        sequence=next(_sequence),
        work_unit=work_unit,
        timestamp=at,
        state=new,
        reason=reason,
    )


def count(work_unit: str, good: int, scrap: int, at: datetime, job_order: str) -> CountEvent:
    return CountEvent(
        source=SOURCE,
        sequence=next(_sequence),
        work_unit=work_unit,
        timestamp=at,
        good=good,
        scrap=scrap,
        job_order=job_order,
    )


def fill(url: str) -> None:
    """Load the plant and drive it into a state with something on every page."""
    with MesClient(url).login("admin", ADMIN_PASSWORD) as admin:
        admin.load_master_data(master_data())
        key = admin.create_api_key("dashboard-tests").api_key
        due = datetime.now(UTC) + timedelta(hours=4)
        # JO-DONE: both operations walked through, an output lot produced.
        admin.create_job_order(JobOrderCreate(code="JO-DONE", product="JUICE-1L", quantity=50))
        admin.release_job_order("JO-DONE")
        admin.dispatch_job_order("JO-DONE", {1: "BTL1-FILLER", 2: "BTL1-CAPPER"})
        with MesClient(url).login("alice", "alice") as alice:
            alice.start_operation("JO-DONE", 1)
            alice.consume_lot("JO-DONE", 1, "PRE-0001", 50)
            alice.report_quantities("JO-DONE", 1, good=50)
            alice.complete_operation("JO-DONE", 1)
            alice.start_operation("JO-DONE", 2)
            alice.consume_lot("JO-DONE", 2, "CAP-0001", 50)
            alice.report_quantities("JO-DONE", 2, good=48, scrap=2)
            alice.complete_operation("JO-DONE", 2, output_lot=OutputLot(code="FG-0001"))
            # JO-RUN: filling now, counts come from the plant.
            admin.create_job_order(
                JobOrderCreate(code="JO-RUN", product="JUICE-1L", quantity=1000, due_at=due)
            )
            admin.release_job_order("JO-RUN")
            admin.dispatch_job_order("JO-RUN", {1: "BTL1-FILLER", 2: "BTL1-CAPPER"})
            alice.start_operation("JO-RUN", 1)
            alice.consume_lot("JO-RUN", 1, "PRE-0002", 500)
        # JO-QA: packing with case weights measured; the last one is out of specification,
        # so the MES opens a nonconformance and holds the order and its lot (rule 5).
        admin.create_job_order(JobOrderCreate(code="JO-QA", product="CASE-12", quantity=100))
        admin.release_job_order("JO-QA")
        admin.dispatch_job_order("JO-QA", {1: "PCK1-CASER"})
        admin.start_operation("JO-QA", 1)
        admin.consume_lot("JO-QA", 1, "CARTON-0001", 10)
        start = datetime.now(UTC) - timedelta(minutes=30)
        for i, value in enumerate(CASE_WEIGHTS):
            admin.record_measurement(
                "JO-QA",
                1,
                "case_weight",
                value,
                lot="CARTON-0001",
                measured_at=start + timedelta(minutes=i),
            )
        admin.create_job_order(
            JobOrderCreate(
                code="JO-LATE",
                product="JUICE-1L",
                quantity=10,
                due_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
    # Plant events happen after the master data exists (the MES keeps the newest state).
    now = datetime.now(UTC)
    with MesClient(url, api_key=key) as connector:
        connector.ingest(past_two_hours(now))
        connector.ingest(
            [
                state("BTL1-FILLER", EquipmentState.SETUP, now, "changeover"),
                state("BTL1-FILLER", EquipmentState.RUNNING, now + timedelta(seconds=1)),
                state("BTL1-CAPPER", EquipmentState.RUNNING, now),
                state("BTL1-LABELLER", EquipmentState.STARVED, now),
                state("PCK1-CASER", EquipmentState.DOWN, now, "jam"),
                state("PCK1-PALLET", EquipmentState.IDLE, now),
                count("BTL1-FILLER", 120, 3, now + timedelta(seconds=1), "JO-RUN"),
            ]
        )


def past_two_hours(now: datetime, seed: int = 7) -> list[StateChangeEvent | CountEvent]:
    """Two hours of bottling-line history before ``now`` (state history and the filler's
    counts at about 90 % of its standard rate while running), so the Line page has a
    realistic window: a changeover, runs, jams, starved and blocked spells."""
    rng = random.Random(seed)
    events: list[StateChangeEvent | CountEvent] = []
    start = now - timedelta(hours=2)
    for unit in ("BTL1-FILLER", "BTL1-CAPPER", "BTL1-LABELLER"):
        at = start
        events.append(state(unit, EquipmentState.SETUP, at, "changeover to JUICE-1L"))
        at += timedelta(minutes=rng.uniform(4, 8))
        until = now - timedelta(minutes=2)  # history only: the present comes after
        while at < until:
            run = min(timedelta(minutes=rng.uniform(5, 15)), until - at)
            events.append(state(unit, EquipmentState.RUNNING, at))
            if unit == "BTL1-FILLER":
                tick = at
                while tick + timedelta(minutes=1) <= at + run:
                    tick += timedelta(minutes=1)
                    good = int(60 / 0.5 * 0.9)
                    events.append(count(unit, good, rng.randint(0, 3), tick, "JO-RUN"))
            at += run
            if at >= until:
                break
            stop, reason = rng.choice(
                [
                    (EquipmentState.DOWN, "jam"),
                    (EquipmentState.DOWN, "bottle fallen"),
                    (EquipmentState.STARVED, "no preforms"),
                    (EquipmentState.BLOCKED, "outfeed full"),
                    (EquipmentState.IDLE, "waiting for operator"),
                ]
            )
            events.append(state(unit, stop, at, reason))
            at = min(at + timedelta(minutes=rng.uniform(0.5, 4)), until)
    return events


def api_key(url: str) -> str:
    """A fresh integration key (to post plant events like a connector)."""
    with MesClient(url).login("admin", ADMIN_PASSWORD) as admin:
        return admin.create_api_key(f"dashboard-tests-{next(_sequence)}").api_key
