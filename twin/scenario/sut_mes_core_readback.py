"""mes_core's quality and audit records read back: lot status, holds and their reasons,
audit entries, signatures, SPC verdicts, refusals and ingest counts (part of the mes_core
adapter, :mod:`twin.scenario.sut_mes_core`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mes_core.client import MesClientError
from twin.scenario.sut import (
    AuditRecord,
    IngestStats,
    Refusal,
    SignatureRecord,
)
from twin.scenario.sut_mes_core_base import AUDIT_PAGE, COLLECTOR_KEY, MesCoreBase


@dataclass(frozen=True)
class _AuditEntry:
    entry_id: str
    action: str
    object_ref: str
    at: str
    entry_hash: str
    detail: dict[str, Any]


class QualityReadBack(MesCoreBase):
    """The quality and audit read-backs of the mes_core adapter."""

    def lot_state(self, lot: str) -> str | None:
        try:
            return str(self._timed(self._admin_client().get_lot, lot).status)
        except MesClientError:
            return None

    def held(self) -> list[str]:
        """Open nonconformances (each holds lots and/or job orders until disposed)."""
        ncs = self._timed(self._admin_client().nonconformances, state="open")
        return [f"nc:{nc.number}" for nc in ncs]

    def holds_of(self, target: str) -> list[str]:
        """What an open nonconformance holds (job orders and lots), for the report."""
        number = target.removeprefix("nc:")
        try:
            nc = self._timed(self._admin_client().get_nonconformance, number)
        except MesClientError:
            return []
        return [f"job_order:{j}" for j in nc.held_job_orders] + [
            f"lot:{lot}" for lot in nc.held_lots
        ]

    def hold_reason(self, target: str) -> tuple[str, str] | None:
        """The nonconformance's source (``out_of_spec``, ``spc``, ``manual``) and its
        description: mes_core's own evidence for the hold."""
        try:
            nc = self._timed(self._admin_client().get_nonconformance, target.removeprefix("nc:"))
        except MesClientError:
            return None
        return nc.source, nc.description

    def audit_entries(self, action: str, object_ref: str | None = None) -> list[AuditRecord]:
        return [
            AuditRecord(e.entry_id, e.action, e.object_ref, e.at, e.entry_hash)
            for e in self._audit_pages(action, object_ref)
        ]

    def _audit_pages(self, action: str, object_ref: str | None) -> list[_AuditEntry]:
        admin = self._admin_client()
        out: list[_AuditEntry] = []
        after = 0
        while True:
            page = self._timed(
                admin.audit_entries, after_id=after, limit=500, action=action, object=object_ref
            )
            out.extend(
                _AuditEntry(str(e.id), e.action, e.object, e.at.isoformat(), e.hash, e.detail)
                for e in page
            )
            if len(page) < 500:
                return out
            after = page[-1].id

    def signatures(self) -> list[SignatureRecord]:
        # mes_core signs QA dispositions (21 CFR 11.50/11.70) and records each signature's
        # manifestation, meaning and binding hash in the disposition's audit entry.
        return [
            SignatureRecord(
                e.entry_id,
                e.object_ref,
                str(e.detail.get("meaning", "")),
                str(e.detail.get("signature", "")),
                str(e.detail["binding_hash"]) if "binding_hash" in e.detail else None,
            )
            for e in self._audit_pages("nonconformance.disposed", None)
            if "signature" in e.detail
        ]

    def spc_rules_fired(self, characteristic: str) -> dict[int, int] | None:
        admin = self._admin_client()
        chars = [c for c in self._timed(admin.characteristics) if c.name == characteristic]
        if not chars:
            return None
        fired: dict[int, int] = {}
        for char in chars:
            for m in self._timed(admin.measurements, char.id, limit=10_000):
                for rule in m.spc_rules:
                    fired[rule] = fired.get(rule, 0) + 1
        return fired

    def refusals(self) -> list[Refusal]:
        admin = self._admin_client()
        out: list[Refusal] = []
        after = 0
        while True:
            page = self._timed(admin.audit_entries, after_id=after, limit=500, action="refused")
            for e in page:
                out.append(
                    Refusal(
                        str(e.detail.get("rule", "")),
                        e.object,
                        str(e.detail.get("message", "")),
                        e.at.isoformat(),
                        entry_id=str(e.id),
                        entry_hash=e.hash,
                    )
                )
            if len(page) < 500:
                return out
            after = page[-1].id

    def ingest_stats(self) -> IngestStats:
        """What the MES itself recorded: its audit trail has one ``plant_events.ingested``
        entry per batch with the events accepted and refused as duplicates. (Falls back to
        the answers the collector got when the audit trail cannot be read.)"""
        admin = self._admin_client()
        accepted = duplicates = 0
        after = 0
        try:
            while True:
                page = self._timed(
                    admin.audit_entries,
                    after_id=after,
                    limit=AUDIT_PAGE,
                    action="plant_events.ingested",
                )
                for e in page:
                    if e.actor.removeprefix("api_key:").startswith(COLLECTOR_KEY):
                        accepted += int(e.detail.get("accepted", 0))
                        duplicates += int(e.detail.get("duplicates", 0))
                if len(page) < AUDIT_PAGE:
                    return IngestStats(accepted, duplicates)
                after = page[-1].id
        except MesClientError:
            return IngestStats(getattr(self, "_ingested", 0), getattr(self, "_duplicates", 0))
