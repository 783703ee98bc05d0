"""Shared field types of the MES wire schemas."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

#: Identifiers of MES objects (used in URLs, so no slashes or spaces).
Code = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:#@+-]*$")
]
#: Quantities of material or units: positive and not absurd.
Quantity = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]
#: Counts that may be zero.
Count = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
Text = Annotated[str, Field(max_length=500)]
Name = Annotated[str, Field(max_length=200)]


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """Response bodies: built from ORM rows or dicts."""

    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    """Every error of the API: ``rule`` is the machine-readable code (an enforcement rule
    such as ``SEQUENCE``, or ``NOT_FOUND``, ``VALIDATION``...), ``object`` what it concerns."""

    rule: str
    message: str
    object: str | None = None
    detail: list[dict[str, Any]] | None = None
