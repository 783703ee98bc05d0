"""Wire schemas of the ERP exchange (the documents themselves are B2MML XML)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ImportOut(BaseModel):
    """What an imported ProcessOperationsSchedule did: ``job_orders`` are all the
    document's orders; each is in ``created`` (new), ``released`` (released by this
    import, RequestState Released) and/or ``unchanged`` (already there as described)."""

    schedule_id: str
    job_orders: list[str]
    sha256: str
    created: list[str] = Field(default_factory=list)
    released: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
