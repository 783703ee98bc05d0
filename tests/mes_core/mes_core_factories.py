"""Test data factories: a small plant with unique codes per test."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from mes_core.client import MesClient
from mes_core.schemas.execution import JobOrderCreate
from mes_core.schemas.masterdata import MasterData

ADMIN_PASSWORD = "admin-test-password"
_counter = itertools.count(1)


@dataclass
class Plant:
    """Codes of one test's plant (prefix ``p``) and clients for its people."""

    url: str
    p: str
    admin: MesClient
    clients: dict[str, MesClient] = field(default_factory=dict)

    def c(self, code: str) -> str:
        return f"{self.p}-{code}"

    def person(self, code: str) -> MesClient:
        if code not in self.clients:
            self.clients[code] = MesClient(self.url).login(self.c(code), "pw")
        return self.clients[code]

    def job_order(self, code: str = "JO", quantity: float = 10, *, dispatch: bool = True) -> str:
        jo = self.c(code)
        self.admin.create_job_order(
            JobOrderCreate(code=jo, product=self.c("PROD"), quantity=quantity)
        )
        if dispatch:
            self.admin.release_job_order(jo)
            self.admin.dispatch_job_order(jo, {1: self.c("FILL"), 2: self.c("CAP")})
        return jo

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def plant(url: str, admin: MesClient, **overrides: object) -> Plant:
    """Load a two-step plant (fill on a Filler, cap on a Capper) with unique codes; fillers
    FILL, FILL2, FILL-UNCAL, FILL-UNQUAL, cappers CAP, CAP2, CAP3. Overrides:
    ``allow_partial`` (cap), ``fill_units`` / ``cap_units`` (each segment's
    ``max_work_units``), ``cap_depends_on`` (cap's segment dependencies)."""
    p = f"T{next(_counter)}{uuid.uuid4().hex[:6]}"
    today = datetime.now(UTC).date()
    later = (today + timedelta(days=365)).isoformat()
    earlier = (today - timedelta(days=1)).isoformat()

    def c(code: str) -> str:
        return f"{p}-{code}"

    data = {
        "equipment": [
            {"code": c("LINE"), "level": "line"},
            {
                "code": c("FILL"),
                "level": "work_unit",
                "parent": c("LINE"),
                "equipment_class": "Filler",
                "calibration_due": later,
            },
            {
                "code": c("CAP"),
                "level": "work_unit",
                "parent": c("LINE"),
                "equipment_class": "Capper",
            },
            {
                "code": c("FILL2"),
                "level": "work_unit",
                "parent": c("LINE"),
                "equipment_class": "Filler",
                "calibration_due": later,
            },
            *(
                {
                    "code": c(code),
                    "level": "work_unit",
                    "parent": c("LINE"),
                    "equipment_class": "Capper",
                }
                for code in ("CAP2", "CAP3")
            ),
            {
                "code": c("FILL-UNCAL"),
                "level": "work_unit",
                "parent": c("LINE"),
                "equipment_class": "Filler",
                "calibration_due": earlier,
            },
            {
                "code": c("FILL-UNQUAL"),
                "level": "work_unit",
                "parent": c("LINE"),
                "equipment_class": "Filler",
                "qualified": False,
            },
        ],
        "materials": [{"code": c("BOTTLE")}, {"code": c("CAPS")}, {"code": c("PROD")}],
        "routings": [
            {
                "code": c("R"),
                "product": c("PROD"),
                "segments": [
                    {
                        "sequence": 1,
                        "name": "fill",
                        "equipment_class": "Filler",
                        "skill": "filling",
                        "materials": [{"material": c("BOTTLE")}],
                        "max_work_units": overrides.get("fill_units", 1),
                    },
                    {
                        "sequence": 2,
                        "name": "cap",
                        "equipment_class": "Capper",
                        "materials": [{"material": c("CAPS")}],
                        "allow_partial": overrides.get("allow_partial", False),
                        "max_work_units": overrides.get("cap_units", 1),
                        "depends_on": overrides.get("cap_depends_on"),
                    },
                ],
            }
        ],
        "persons": [
            {
                "code": c("op"),
                "roles": ["operator"],
                "password": "pw",
                "certifications": [{"skill": "filling", "valid_until": later}],
            },
            {
                "code": c("expired"),
                "roles": ["operator"],
                "password": "pw",
                "certifications": [{"skill": "filling", "valid_until": earlier}],
            },
            {"code": c("sup"), "roles": ["supervisor"], "password": "pw"},
            {"code": c("qa"), "roles": ["quality"], "password": "pw"},
        ],
        "lots": [
            {"code": c("B1"), "material": c("BOTTLE"), "quantity": 100},
            {"code": c("B2"), "material": c("BOTTLE"), "quantity": 5},
            {"code": c("C1"), "material": c("CAPS"), "quantity": 100},
            {"code": c("BQ"), "material": c("BOTTLE"), "quantity": 100, "status": "quarantine"},
            {
                "code": c("BX"),
                "material": c("BOTTLE"),
                "quantity": 100,
                "expires_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            },
        ],
    }
    admin.load_master_data(MasterData.model_validate(data))
    return Plant(url=url, p=p, admin=admin)


def today() -> date:
    return datetime.now(UTC).date()
