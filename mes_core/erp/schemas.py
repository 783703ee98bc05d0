"""Wire schemas of the ERP exchange (the documents themselves are B2MML XML)."""

from __future__ import annotations

from pydantic import BaseModel


class ImportOut(BaseModel):
    """What an imported ProcessOperationsSchedule created."""

    schedule_id: str
    job_orders: list[str]
    sha256: str
