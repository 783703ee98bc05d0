"""Test data: a small bottling cell with one inspected operation, built through the
execution core's own services (so the quality part is tested on real job orders)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.orm import Session

from mes_core.domain.states import EquipmentLevel, Role
from mes_core.persistence import execution, masterdata
from mes_core.persistence.models import InspectionCharacteristic, JobOrder
from mes_core.persistence.security import SYSTEM, Actor
from mes_core.quality.disposition_service import DISPOSITION_SKILL
from mes_core.schemas import execution as ex
from mes_core.schemas import masterdata as md

QA_PASSWORD = "qa-secret-1"


@dataclass
class Cell:
    tag: str
    line: str
    filler: str
    capper: str
    product: str
    preform: str
    preform_lot: str
    routing: str
    operator: str
    qa: str
    qa_uncertified: str

    def qa_actor(self, session: Session, code: str | None = None) -> Actor:
        person = masterdata.get_person(session, code or self.qa)
        return Actor(person.code, frozenset(person.role_list), person.id, person.code)


def build_cell(session: Session, *, lapsed_qa: bool = False) -> Cell:
    """Master data: line > filler + capper; a routing fill (fill volume 495-505 ml) -> cap.

    ``lapsed_qa`` adds a QA person whose disposition certification has expired (password
    hashing is the slow part of a cell, so only the tests that need them get them)."""
    tag = uuid.uuid4().hex[:8].upper()
    c = Cell(
        tag=tag,
        line=f"L-{tag}",
        filler=f"FIL-{tag}",
        capper=f"CAP-{tag}",
        product=f"WATER-{tag}",
        preform=f"PF-{tag}",
        preform_lot=f"PFL-{tag}",
        routing=f"RT-{tag}",
        operator=f"op-{tag}".lower(),
        qa=f"qa-{tag}".lower(),
        qa_uncertified=f"qa2-{tag}".lower(),
    )
    far = date.today() + timedelta(days=365)
    data = md.MasterData(
        equipment=[
            md.EquipmentCreate(code=c.line, level=EquipmentLevel.LINE),
            md.EquipmentCreate(
                code=c.filler,
                level=EquipmentLevel.WORK_UNIT,
                parent=c.line,
                equipment_class="Filler",
            ),
            md.EquipmentCreate(
                code=c.capper,
                level=EquipmentLevel.WORK_UNIT,
                parent=c.line,
                equipment_class="Capper",
            ),
        ],
        materials=[md.MaterialCreate(code=c.product), md.MaterialCreate(code=c.preform)],
        routings=[
            md.RoutingCreate(
                code=c.routing,
                product=c.product,
                segments=[
                    md.SegmentIn(
                        sequence=10,
                        name="fill",
                        equipment_class="Filler",
                        pru_seconds=0.5,
                        skill="filling",
                        materials=[md.SegmentMaterialIn(material=c.preform)],
                        characteristics=[
                            md.CharacteristicIn(
                                name="fill_volume", lsl=495, target=500, usl=505, unit="ml"
                            )
                        ],
                    ),
                    md.SegmentIn(
                        sequence=20, name="cap", equipment_class="Capper", pru_seconds=0.4
                    ),
                ],
            )
        ],
        persons=[
            md.PersonCreate(
                code=c.operator,
                name="Anna Operator",
                roles=[Role.OPERATOR],
                password="op-secret-1",
                certifications=[md.CertificationIn(skill="filling", valid_until=far)],
            ),
            md.PersonCreate(
                code=c.qa,
                name="Maria Quality",
                roles=[Role.QUALITY],
                password=QA_PASSWORD,
                certifications=[md.CertificationIn(skill=DISPOSITION_SKILL, valid_until=far)],
            ),
        ],
        lots=[md.LotCreate(code=c.preform_lot, material=c.preform, quantity=10_000)],
    )
    if lapsed_qa:
        data.persons.append(
            md.PersonCreate(
                code=c.qa_uncertified,
                name="Quentin Lapsed",
                roles=[Role.QUALITY],
                password=QA_PASSWORD,
                certifications=[
                    md.CertificationIn(
                        skill=DISPOSITION_SKILL, valid_until=date.today() - timedelta(days=1)
                    )
                ],
            )
        )
    masterdata.load_master_data(session, data, actor=SYSTEM)
    session.commit()
    return c


def running_job(session: Session, cell: Cell, code: str | None = None) -> JobOrder:
    """A job order of the cell with its fill operation running on the filler."""
    code = code or f"PO-{uuid.uuid4().hex[:8].upper()}"
    execution.create_job_order(
        session,
        ex.JobOrderCreate(code=code, product=cell.product, quantity=1000),
        actor=SYSTEM,
    )
    execution.release_job_order(session, code, actor=SYSTEM)
    execution.dispatch_job_order(
        session,
        code,
        ex.DispatchRequest(work_units={10: cell.filler, 20: cell.capper}),
        actor=SYSTEM,
    )
    execution.start_operation(
        session, code, 10, ex.StartRequest(operators=[cell.operator]), actor=SYSTEM
    )
    session.commit()
    return execution.get_job_order(session, code)


def characteristic(job: JobOrder, name: str = "fill_volume") -> InspectionCharacteristic:
    return next(c for o in job.operations for c in o.segment.characteristics if c.name == name)
