"""Helpers shared by the sync and async clients."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from mes_core.schemas.audit import ChangeEvent


def body_of(model: BaseModel | None) -> Any:
    """A request body: only the fields the caller set, JSON-ready."""
    return None if model is None else model.model_dump(mode="json", exclude_unset=True)


def spool_headers(spool: tuple[str, int] | None) -> dict[str, str] | None:
    """The headers reporting a collector's spool depth with an ingest batch, if any."""
    if spool is None:
        return None
    return {"X-Mestwin-Collector": spool[0], "X-Mestwin-Spool-Depth": str(spool[1])}


def parse_sse_line(line: str, data: list[str]) -> ChangeEvent | None:
    """Feed one line of a server-sent event stream; returns an event at its blank line."""
    if line == "":
        if not data:
            return None
        event = ChangeEvent.model_validate(json.loads("\n".join(data)))
        data.clear()
        return event
    if line.startswith("data:"):
        data.append(line[5:].lstrip())
    return None
