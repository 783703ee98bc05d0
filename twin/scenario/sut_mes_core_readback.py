"""mes_core's quality and audit records read back: lot status, holds and their reasons,
audit entries, signatures, SPC verdicts, refusals, ingest counts and the state history of
job orders and lots (part of the mes_core
adapter, :mod:`twin.scenario.sut_mes_core`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mes_core.client import MesClientError
from twin.scenario.sut import (
    AuditRecord,
    IngestStats,
    Refusal,
    SignatureRecord,
    StateChange,
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

    # -- StateHistory: job order and lot states on the plant's timeline -------------------

    def state_history(self, kind: str, ident: str) -> list[StateChange] | None:
        """The state changes of a job order or lot mes_core recorded on the plant's
        timeline, from its audit trail: operation starts and completions (dated by the
        business time the operator stated), lots consumed to nothing, lots made by an
        operation, and holds and their release, dated as the MES dated them: a
        nonconformance's hold from the result that opened it (``opened_at``), its release
        from the disposition (``disposed_at``). Entries the MES dated on its own clock (ERP
        created and released the order, a supervisor dispatched it: no plant time stated)
        are not on the plant's timeline and are left out, so the state before the first
        dated change is unknown."""
        admin = self._admin_client()
        try:
            lot = self._timed(admin.get_lot, ident) if kind == "lot" else None
            if kind == "job_order":
                self._timed(admin.get_job_order, ident)
        except MesClientError:
            return None
        changes: list[tuple[float, int, StateChange]] = []
        ncs: dict[str, Any] = {}

        def add(at: float | None, state: str, entry: _AuditEntry, dated_by: str = "") -> None:
            if at is None or not state:
                return
            cite = f"MES audit entry {entry.entry_id} ({entry.action}) hash {entry.entry_hash}"
            changes.append((at, int(entry.entry_id), StateChange(at, state, cite + dated_by)))

        def nc_dated(entry: _AuditEntry, field: str) -> tuple[float | None, str]:
            number = str(entry.detail.get("reason", "")).split(":", 1)[0].split(" ", 1)[0]
            if not number.startswith("NC-"):
                return self._business_seconds(entry), ""
            if number not in ncs:
                try:
                    ncs[number] = self._timed(admin.get_nonconformance, number)
                except MesClientError:
                    ncs[number] = None
            at = getattr(ncs[number], field, None)
            verb = "opened" if field == "opened_at" else "disposed"
            return self._plant_seconds(at), f", dated as nonconformance {number} was {verb}"

        prefix = f"{'job_order' if kind == 'job_order' else 'material_lot'}:{ident}"
        for e in self._audit_pages("", prefix):
            if e.object_ref != prefix and not e.object_ref.startswith(f"{prefix}/"):
                continue
            if e.action == "operation.started":
                add(self._business_seconds(e), "running", e)
            elif e.action == "operation.completed":
                add(self._business_seconds(e), str(e.detail.get("job_order_state", "")), e)
            elif e.action in ("job_order.hold", "lot.hold"):
                at, why = nc_dated(e, "opened_at")
                add(at, "held" if kind == "job_order" else "on_hold", e, why)
            elif e.action in ("job_order.hold_released", "lot.hold_released"):
                at, why = nc_dated(e, "disposed_at")
                add(at, str(e.detail.get("state", e.detail.get("status", ""))), e, why)
            elif e.action == "lot.created" and lot is not None and lot.produced_by:
                # Made by an operation: the lot is dated when the operation ended.
                add(self._plant_seconds(lot.created_at), str(e.detail.get("status", "")), e)
        if kind == "lot":
            for e in self._audit_pages("lot.consumed", None):
                if e.detail.get("lot") == ident and float(e.detail.get("remaining", 1)) <= 1e-9:
                    add(self._business_seconds(e), "consumed", e)
        out: list[StateChange] = []
        for _, _, change in sorted(changes, key=lambda c: (c[0], c[1])):
            if not out or out[-1].state != change.state:
                out.append(change)
        return out

    def _business_seconds(self, entry: _AuditEntry) -> float | None:
        """The plant time an audit entry states (``occurred_at``), else None: an entry on
        the MES's own clock is not on the plant's timeline."""
        stated = entry.detail.get("occurred_at")
        return self._plant_seconds(datetime.fromisoformat(str(stated))) if stated else None
