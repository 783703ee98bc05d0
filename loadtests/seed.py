"""Master data for a load test, loaded through ``mes_core.client`` before Locust starts.

Every code carries a run prefix, so that a load test can run against an MES that already
holds a plant (and again, and again) without colliding with it. What the Locust users need
to know (codes, credentials) is written to a small JSON manifest the locustfile reads from
``MESTWIN_LOADTEST_SEED``; copy it to the worker hosts in distributed runs.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from loadtests.config import Seed
from mes_core.client import MesClient
from mes_core.schemas.execution import JobOrderCreate
from mes_core.schemas.masterdata import (
    CertificationIn,
    CharacteristicIn,
    EquipmentCreate,
    LotCreate,
    MasterData,
    MaterialCreate,
    PersonCreate,
    RoutingCreate,
    SegmentIn,
    SegmentMaterialIn,
)

#: A JSON list of running job orders ({"code", "operator"}): :func:`running_job_orders`.
JOB_ORDERS_ENV = "MESTWIN_BENCH_JOB_ORDERS"
SEED_ENV = "MESTWIN_LOADTEST_SEED"

MIXER_CLASS = "LoadMixer"
FILLER_CLASS = "LoadFiller"
# Machines that only the connector's events reach: their counts and states do not touch the
# operators' job orders, so the connector's load and the operators' load can be read apart.
PACKER_CLASS = "LoadPacker"
MIX_SKILL = "load-mixing"
FILL_SKILL = "load-filling"
CHARACTERISTIC = "fill_weight"


@dataclass(frozen=True)
class SeedManifest:
    """What the simulated users need to know about the seeded plant."""

    prefix: str
    product: str
    routing: str
    mixers: list[str]
    fillers: list[str]
    packers: list[str]
    lots: list[str]
    operators: list[str]
    operator_password: str
    supervisor: str
    supervisor_password: str
    quality: str
    quality_password: str
    integration_api_key: str
    # Bearer tokens of every person, obtained once at seeding: a shift logs in once, and
    # a burst of scrypt log-ins at spawn time would otherwise colour the first minute.
    tokens: dict[str, str] = field(default_factory=dict)
    characteristic: str = CHARACTERISTIC
    lsl: float = 495.0
    target: float = 500.0
    usl: float = 505.0

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> SeedManifest:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def build_master_data(prefix: str, seed: Seed, password: str) -> tuple[MasterData, SeedManifest]:
    """The plant of a load test: one line with ``seed.work_units_per_class`` mixers and
    fillers, a two-operation routing (mix consuming raw material, fill with a weight check),
    certified operators, a supervisor, a QA person and large raw-material lots."""
    p = prefix
    valid = date.today() + timedelta(days=365)
    site, area, line = f"{p}-SITE", f"{p}-AREA", f"{p}-LINE"
    width = max(3, len(str(seed.work_units_per_class)))
    mixers = [f"{p}-MIX-{i:0{width}d}" for i in range(1, seed.work_units_per_class + 1)]
    fillers = [f"{p}-FIL-{i:0{width}d}" for i in range(1, seed.work_units_per_class + 1)]
    packers = [f"{p}-PCK-{i:0{width}d}" for i in range(1, seed.work_units_per_class + 1)]
    equipment = [
        EquipmentCreate(code=site, level="site"),
        EquipmentCreate(code=area, level="area", parent=site),
        EquipmentCreate(code=line, level="line", parent=area),
    ]
    equipment += [
        EquipmentCreate(
            code=code, level="work_unit", parent=line, equipment_class=cls, calibration_due=valid
        )
        for codes, cls in (
            (mixers, MIXER_CLASS),
            (fillers, FILLER_CLASS),
            (packers, PACKER_CLASS),
        )
        for code in codes
    ]
    raw, product = f"{p}-RAW", f"{p}-PROD"
    routing = RoutingCreate(
        code=f"{p}-ROUTE",
        product=product,
        segments=[
            SegmentIn(
                sequence=1,
                name="Mix",
                equipment_class=MIXER_CLASS,
                pru_seconds=1,
                skill=MIX_SKILL,
                materials=[SegmentMaterialIn(material=raw, quantity_per_unit=0.1)],
            ),
            SegmentIn(
                sequence=2,
                name="Fill",
                equipment_class=FILLER_CLASS,
                pru_seconds=1,
                skill=FILL_SKILL,
                characteristics=[
                    CharacteristicIn(name=CHARACTERISTIC, lsl=495, target=500, usl=505, unit="g")
                ],
            ),
        ],
    )
    certs = [
        CertificationIn(skill=MIX_SKILL, valid_until=valid),
        CertificationIn(skill=FILL_SKILL, valid_until=valid),
    ]
    width = max(3, len(str(seed.operators)))
    operators = [f"{p}-OP{i:0{width}d}" for i in range(1, seed.operators + 1)]
    persons = [
        PersonCreate(code=code, roles=["operator"], password=password, certifications=certs)
        for code in operators
    ]
    persons += [
        PersonCreate(code=f"{p}-SUP", roles=["supervisor"], password=password),
        PersonCreate(code=f"{p}-QA", roles=["quality"], password=password),
    ]
    lots = [f"{p}-RAW-L{i:03d}" for i in range(1, 21)]
    expires = datetime.now(UTC) + timedelta(days=365)
    data = MasterData(
        equipment=equipment,
        materials=[MaterialCreate(code=raw, unit="kg"), MaterialCreate(code=product)],
        routings=[routing],
        persons=persons,
        lots=[
            LotCreate(code=code, material=raw, quantity=seed.lot_quantity, expires_at=expires)
            for code in lots
        ],
    )
    manifest = SeedManifest(
        prefix=p,
        product=product,
        routing=routing.code,
        mixers=mixers,
        fillers=fillers,
        packers=packers,
        lots=lots,
        operators=operators,
        operator_password=password,
        supervisor=f"{p}-SUP",
        supervisor_password=password,
        quality=f"{p}-QA",
        quality_password=password,
        integration_api_key="",
    )
    return data, manifest


def seed_mes(
    mes_url: str, seed: Seed, *, admin_user: str, admin_password: str, prefix: str | None = None
) -> SeedManifest:
    """Load a fresh load-test plant into the MES at ``mes_url`` as its administrator."""
    prefix = prefix or f"LT{uuid.uuid4().hex[:6].upper()}"
    password = secrets.token_urlsafe(12)
    data, manifest = build_master_data(prefix, seed, password)
    with MesClient(mes_url, timeout=120) as client:
        client.login(admin_user, admin_password)
        client.load_master_data(data)
        key = client.create_api_key(f"{prefix}-loadtest", role="integration")
    tokens: dict[str, str] = {}
    for person in [*manifest.operators, manifest.supervisor, manifest.quality]:
        with MesClient(mes_url, timeout=120) as client:
            client.login(person, password)
            assert client.token is not None
            tokens[person] = client.token
    return SeedManifest(
        **{**asdict(manifest), "integration_api_key": key.api_key, "tokens": tokens}
    )


def running_job_orders(mes_url: str, seed: SeedManifest, users: int, path: Path) -> None:
    """One running job order per user (created, released, dispatched, its first operation
    started by the user's operator), written to ``path`` (JSON, for ``bench api``'s users:
    ``loadtests/bench/api_locustfile.py``).

    Done before Locust starts: Locust's rate is the transactions over the time since its
    statistics were reset, once the users are spawned; set-up requests in ``on_start``
    fell in that window and cost the MES's figure 2-4 % of its transactions per second,
    which the bare endpoint (no set-up) did not pay."""
    jobs = []
    with MesClient(mes_url, token=seed.tokens[seed.supervisor], timeout=60) as supervisor:
        for number in range(users):
            code = f"{seed.prefix}-BJ-{uuid.uuid4().hex[:10]}"
            operator = seed.operators[number % len(seed.operators)]
            mixer = seed.mixers[number % len(seed.mixers)]
            supervisor.create_job_order(
                JobOrderCreate(code=code, product=seed.product, quantity=1e6)
            )
            supervisor.release_job_order(code)
            supervisor.dispatch_job_order(code, {1: mixer})
            with MesClient(mes_url, token=seed.tokens[operator], timeout=60) as op:
                op.start_operation(code, 1)
            jobs.append({"code": code, "operator": operator})
    path.write_text(json.dumps(jobs))
