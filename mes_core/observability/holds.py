"""Open holds read from the database at scrape time (rule 5 of PRODUCT.md: material lots
``on_hold`` and job orders ``held`` stay where they are until QA disposes them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import Engine, func, select

from mes_core.domain.states import JobOrderState, LotStatus
from mes_core.persistence.models import JobOrder, MaterialLot


def open_holds_from(engine: Engine) -> Callable[[], Mapping[str, int]]:
    """A provider for :func:`mes_core.observability.install` counting holds in ``engine``."""

    def open_holds() -> Mapping[str, int]:
        with engine.connect() as connection:
            lots = connection.execute(
                select(func.count())
                .select_from(MaterialLot)
                .where(MaterialLot.status == LotStatus.ON_HOLD.value)
            ).scalar_one()
            jobs = connection.execute(
                select(func.count())
                .select_from(JobOrder)
                .where(JobOrder.state == JobOrderState.HELD.value)
            ).scalar_one()
        return {"material_lot": int(lots), "job_order": int(jobs)}

    return open_holds
