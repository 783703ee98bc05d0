"""The plant model as mes_core master data, and loading it with the shift calendars
(part of the mes_core adapter, :mod:`twin.scenario.sut_mes_core`)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from mes_core.client import MesClientError
from mes_core.kpi.schemas import CalendarIn
from mes_core.quality.schemas import LimitsIn
from mes_core.schemas.masterdata import MasterData, MasterDataResult
from plant_models.assembly import segment_predecessors
from plant_models.schema import PlantModel, intake_of, segments_of
from twin.scenario.sut_mes_core_base import BACKDATE, DEFAULT_PASSWORD, ROLE_MAP, MesCoreBase


class MasterDataLoading(MesCoreBase):
    """The plant's master data; remembers each product's material, operation sequence and
    intermediate materials for the actions."""

    def master_data(self, plant: PlantModel) -> MasterData:
        """The plant model as mes_core master data (dates on the plant's timeline)."""
        far = self._date(plant.plant.start.date()) + timedelta(days=3650)
        equipment: list[dict[str, Any]] = [
            {"code": plant.plant.code, "name": plant.plant.name, "level": "site"}
        ]
        for line in plant.lines:
            equipment.append(
                {"code": line.code, "name": line.name, "level": "line", "parent": plant.plant.code}
            )
            for wu in line.work_units:
                equipment.append(
                    {
                        "code": wu.code,
                        "name": wu.name,
                        "level": "work_unit",
                        "parent": line.code,
                        "equipment_class": wu.equipment_class,
                        "calibration_due": far.isoformat(),
                    }
                )
        materials = [{"code": m.id, "name": m.name, "unit": m.unit} for m in plant.materials]
        routings = []
        lines = {line.code: line for line in plant.lines}
        for product in plant.products:
            # How many work units run each segment: the units of its station (ISA-95
            # equipment quantity; two cappers in parallel run one CAP operation).
            runs_on = Counter(
                seg.id for seg in segments_of(product, lines[product.line]) if seg is not None
            )
            self._product_material[product.id] = product.material
            self._segments[product.id] = {s.id: i + 1 for i, s in enumerate(product.segments)}
            # An assembly line's feeder operations run side by side: each segment follows
            # the segments upstream of it in the flow (ISA-95 segment dependency).
            follows: dict[str, list[int]] | None = None
            if any(wu.assembly is not None for wu in lines[product.line].work_units):
                seq = self._segments[product.id]
                preds = segment_predecessors(product, lines[product.line])
                follows = {k: sorted(seq[p] for p in v) for k, v in preds.items()}
            for s in product.segments:
                if s.output_material is not None:
                    self._output_material[(product.id, s.id)] = s.output_material
            routings.append(
                {
                    "code": product.id,
                    "name": product.name,
                    "product": product.material,
                    "segments": [
                        {
                            "sequence": i + 1,
                            "name": seg.id,
                            "equipment_class": seg.equipment_class,
                            "pru_seconds": seg.standard_run_time,
                            "skill": seg.skill,
                            # Every line of the twin is a flow line: units move on one by
                            # one, so each operation runs alongside its predecessor once
                            # that has made good units (ISA-95 "start after previous
                            # segment starts"); rule 1 still refuses a start before that.
                            "allow_partial": True,
                            "max_work_units": max(runs_on[seg.id], 1),
                            "depends_on": None if follows is None else follows.get(seg.id),
                            "materials": [
                                {"material": r.material, "quantity_per_unit": r.quantity_per_unit}
                                for r in seg.materials
                            ]
                            + [  # the previous operation's intermediate lot, taken in whole
                                {"material": m, "quantity_per_unit": 1.0}
                                for m in intake_of(product, seg.id)
                            ],
                            "characteristics": [
                                {
                                    "name": c.name,
                                    "lsl": c.lsl,
                                    "target": c.target,
                                    "usl": c.usl,
                                    "unit": c.unit,
                                    "sampling_frequency": c.sampling.every_units or 1,
                                }
                                for c in seg.inspections
                            ],
                        }
                        for i, seg in enumerate(product.segments)
                    ],
                }
            )
        persons = []
        for op in plant.operators:
            roles = {ROLE_MAP.get(r, "operator") for r in op.roles}
            if self.backdating:
                roles.add(BACKDATE)
            persons.append(
                {
                    "code": op.id,
                    "name": op.name,
                    "roles": sorted(roles),
                    "password": self.passwords.get(op.id, DEFAULT_PASSWORD),
                    "certifications": [
                        {"skill": c.skill, "valid_until": self._date(c.expires).isoformat()}
                        for c in op.certifications
                    ],
                }
            )
        lots = []
        for lot in plant.material_lots:
            item: dict[str, Any] = {
                "code": lot.id,
                "material": lot.material,
                "quantity": lot.quantity,
                "status": lot.status,
            }
            if lot.expiry is not None:
                end = self._date(lot.expiry) + timedelta(days=1)  # valid through its date
                item["expires_at"] = datetime(end.year, end.month, end.day, tzinfo=UTC).isoformat()
            lots.append(item)
        for m in plant.materials:
            if m.unlimited_supply:
                lots.append({"code": f"{m.id}-BULK", "material": m.id, "quantity": 1e9})
        return MasterData.model_validate(
            {
                "equipment": equipment,
                "materials": materials,
                "routings": routings,
                "persons": persons,
                "lots": lots,
            }
        )

    def load_master_data(self, plant: PlantModel) -> None:
        try:
            self.load_plant(plant)
        except MesClientError as exc:
            if exc.status != 409:  # already loaded (a restarted run on the same database)
                raise
            self._load_calendars(plant)
            self._set_spc_limits()

    def load_plant(self, plant: PlantModel) -> MasterDataResult:
        """Load the plant's master data (equipment, materials, routings with their bills of
        materials, people, lots) and its shift calendars; what the MES created. A plant
        loaded before is refused (``MesClientError`` 409) and left as it is."""
        self._plant = plant
        admin = self._admin_client()
        result: MasterDataResult = self._timed(admin.load_master_data, self.master_data(plant))
        self._load_calendars(plant)
        self._set_spc_limits()
        return result

    def _load_calendars(self, plant: PlantModel) -> None:
        """Each line follows the shift calendar of the people who staff it (planned busy
        time, ISO 22400-2 PBT, comes from the MES's calendar, never from the machine)."""
        admin = self._admin_client()
        days = {d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}
        for cal in plant.shift_calendars:
            body = CalendarIn.model_validate(
                {
                    "timezone": "UTC",
                    "shifts": [
                        {
                            "name": sh.name,
                            "start": sh.start.isoformat(),
                            "end": sh.end.isoformat(),
                            "weekdays": sorted(days[d] for d in sh.days),
                            "breaks": [
                                {"start": b.start.isoformat(), "end": b.end.isoformat()}
                                for b in sh.breaks
                            ],
                        }
                        for sh in cal.shifts
                    ],
                }
            )
            self._timed(admin.put_calendar, cal.id, body)
        for line in plant.lines:
            staff = [o for o in plant.operators if not o.lines or line.code in o.lines]
            if staff:
                self._timed(admin.assign_calendar, line.code, staff[0].calendar)

    def _set_spc_limits(self) -> None:
        """The ``spc_limits`` setting: each characteristic's control limits (user baseline)
        or the number of in-control results they are estimated from."""
        if not self.spc_limits:
            return
        admin = self._admin_client()
        for item in self.spc_limits:
            found = [
                c
                for c in self._timed(admin.characteristics, item.routing)
                if c.name == item.characteristic
            ]
            if not found:
                raise ValueError(
                    f"spc_limits: the MES has no characteristic {item.characteristic!r} "
                    f"on routing {item.routing!r}"
                )
            body = (
                LimitsIn(method="baseline", centre=item.centre, sigma=item.sigma)
                if item.sigma is not None
                else LimitsIn(method="first_n", baseline_n=item.baseline_n or 20)
            )
            for char in found:
                self._timed(admin.set_spc_limits, char.id, body)
