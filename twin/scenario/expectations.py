"""Checking a scenario's expectations against what the run observed (plain data, no I/O).

Each expectation yields one :class:`ExpectationResult` whose ``detail`` says what was
compared with what, so a failed CI job explains itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from plant_models.scenario import (
    AllOrdersCompleted,
    ApiLatencyWithin,
    AuditEntryExists,
    DeviationRefused,
    EventsLossWithin,
    Expectation,
    ExpressionHolds,
    GenealogyLink,
    LabourHoursWithin,
    LotInState,
    MirrorExact,
    OeeWithin,
    OrderInState,
    ReconciliationExact,
    SignatureExists,
    SpcRuleFired,
    StateAt,
    ThroughputWithin,
)
from twin.scenario.custom_expectations import (
    CUSTOM_TYPES,
    capabilities,
    custom_evidence,
    evaluate_custom,
    plant_clock,
)
from twin.scenario.report import (
    DeviationOutcome,
    EventCounts,
    ExpectationResult,
    KpiRecord,
    LatencySummary,
    MirrorReport,
    ReconciliationReport,
)
from twin.scenario.sut import AuditRecord, SignatureRecord, StateChange

DONE_STATES = frozenset({"completed", "closed"})


@dataclass
class Observed:
    """Everything the expectations may look at, gathered by the runner at the end."""

    order_ids: list[str]
    order_states: dict[str, str]
    lot_states: dict[str, str | None]
    deviations: list[DeviationOutcome]
    kpis: list[KpiRecord]
    reconciliation: ReconciliationReport
    events: EventCounts
    latency: LatencySummary
    problems: list[str] = field(default_factory=list)
    audit_entries: dict[tuple[str, str | None], list[AuditRecord]] = field(default_factory=dict)
    """(action, object) of each ``audit_entry`` expectation -> the entries the MES holds."""
    spc: dict[str, dict[int, int] | None] = field(default_factory=dict)
    """Characteristic of each ``spc_rule`` expectation -> results flagged per Nelson rule
    (None: the MES has no such characteristic)."""
    signatures: list[SignatureRecord] = field(default_factory=list)
    """Electronic signatures the MES recorded (read when a ``signature`` expectation asks)."""
    histories: dict[tuple[str, str], list[StateChange] | None] = field(default_factory=dict)
    """(``job_order`` | ``lot``, id) of each ``state_at`` expectation -> the state history
    the MES recorded (None: it does not know the object)."""
    mirror: MirrorReport | None = None
    """The scenario's mirror reconciled (``mirror_exact``)."""
    events_unverified: str | None = None
    """Why the events' count cannot vouch that nothing was lost (an unplanned
    reconnection of the collector); the ``events`` expectation is then not checked."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """Optional capabilities of the system under test it lacks -> the reason to report:
    an expectation that needs one is ``not_checked``, never passed."""


def needs(exp: Expectation) -> str | None:
    """The optional capability of the system under test ``exp`` is checked with (a key of
    ``twin.scenario.sut.CAPABILITIES``), or None when orders and records suffice."""
    if isinstance(exp, OeeWithin | ThroughputWithin):
        return "kpis"
    if isinstance(exp, LotInState):
        return "lot_status"
    if isinstance(exp, DeviationRefused) and exp.recorded:
        return "audit_trail"
    if isinstance(exp, EventsLossWithin):
        return "event_ingest"
    if isinstance(exp, ApiLatencyWithin):
        return "api_latency"
    if isinstance(exp, LabourHoursWithin):
        return "labour"
    if isinstance(exp, AuditEntryExists):
        return "audit_query"
    if isinstance(exp, SpcRuleFired):
        return "spc"
    if isinstance(exp, SignatureExists):
        return "signatures"
    if isinstance(exp, StateAt):
        return "state_history"
    return None


def default_name(exp: Expectation) -> str:
    """A readable name for an expectation the scenario did not name."""
    if isinstance(exp, OrderInState):
        return f"order {exp.order} is {exp.state}"
    if isinstance(exp, LotInState):
        return f"lot {exp.lot} is {exp.state}"
    if isinstance(exp, DeviationRefused):
        # Refused (the action) or caught (a hold): the outcome itself names which.
        return f"deviation {exp.deviation} refused or caught" + (
            f" ({exp.rule})" if exp.rule else ""
        )
    if isinstance(exp, OeeWithin):
        return f"OEE of {exp.line or exp.work_unit} within bounds"
    if isinstance(exp, ThroughputWithin):
        return f"throughput of {exp.line} within bounds"
    if isinstance(exp, GenealogyLink):
        return f"genealogy {'has' if exp.present else 'lacks'} {exp.from_lot} -> {exp.to_lot}"
    if isinstance(exp, LabourHoursWithin):
        return f"labour hours of {exp.order} within bounds"
    if isinstance(exp, ExpressionHolds):
        return exp.expr
    if isinstance(exp, SignatureExists):
        return f"signature meaning {exp.meaning}" + (f" on {exp.object}" if exp.object else "")
    if isinstance(exp, SpcRuleFired):
        rule = f"Nelson rule {exp.rule}" if exp.rule else "an SPC rule"
        return f"{rule} fired on {exp.characteristic}"
    if isinstance(exp, StateAt):
        what = f"job order {exp.order}" if exp.order else f"lot {exp.lot}"
        return f"{what} was {exp.state} at {plant_clock(exp.at)}"
    if isinstance(exp, AuditEntryExists):
        return f"audit trail holds {exp.action}" + (f" on {exp.object}" if exp.object else "")
    return exp.type.replace("_", " ")


def _bounds(value: float | None, lo: float | None, hi: float | None, what: str) -> tuple[bool, str]:
    if value is None:
        return False, f"{what}: no value (the MES gave none)"
    ok = (lo is None or value >= lo) and (hi is None or value <= hi)
    rng = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
    return ok, f"{what} = {value:.4g}, expected within {rng}"


def _kpi(obs: Observed, scope: str, ident: str) -> KpiRecord | None:
    # The MES's own KPI is what is under test; the twin's figure is only a fallback
    # when the MES gives none, and the detail then says so.
    found = [k for k in obs.kpis if k.scope == scope and k.id == ident]
    for source in ("mes", "twin"):
        for k in found:
            if k.source == source:
                return k
    return None


def check(exp: Expectation, obs: Observed) -> ExpectationResult:
    """Evaluate one expectation."""
    name = exp.name or default_name(exp)
    wanted = [needs(exp), *capabilities(exp)]
    capability = next((c for c in wanted if c is not None and c in obs.unavailable), None)
    why: str | None = None
    if capability is not None:
        why = obs.unavailable[capability]
    elif isinstance(exp, MirrorExact) and obs.mirror and obs.mirror.verdict == "not_checked":
        why = obs.mirror.detail
    elif isinstance(exp, EventsLossWithin) and obs.events_unverified:
        why = obs.events_unverified
    if why is not None:
        return ExpectationResult(
            name=name,
            type=exp.type,
            passed=False,
            status="not_checked",
            detail=f"not checked: {why}",
            requirements=list(exp.requirement),
            risk=exp.risk,
            evidence=[] if capability is not None else evidence(exp, obs),
        )
    passed, detail = _evaluate(exp, obs)
    return ExpectationResult(
        name=name,
        type=exp.type,
        passed=passed,
        detail=detail,
        requirements=list(exp.requirement),
        risk=exp.risk,
        evidence=evidence(exp, obs),
    )


def evidence(exp: Expectation, obs: Observed) -> list[str]:
    """The records ``exp`` compares: JSON pointers into the report (its ``orders`` follow
    ``obs.order_ids``, its ``deviations`` and ``kpis`` are ``obs``'s lists), or what was
    read from the MES when the report does not hold it."""
    if isinstance(exp, CUSTOM_TYPES):
        return custom_evidence(exp, obs)
    if isinstance(exp, AllOrdersCompleted):
        return ["#/orders"]
    if isinstance(exp, OrderInState):
        if exp.order in obs.order_ids:
            return [f"#/orders/{obs.order_ids.index(exp.order)}"]
        return [f"MES job order {exp.order} (not in the scenario's order stream)"]
    if isinstance(exp, LotInState):
        return [f"MES material lot {exp.lot}: state read back at the end of the run"]
    if isinstance(exp, DeviationRefused):
        found = [i for i, d in enumerate(obs.deviations) if d.name == exp.deviation]
        entries = [
            f"MES audit entry {obs.deviations[i].audit_entry}"
            for i in found
            if obs.deviations[i].audit_entry
        ]
        return [f"#/deviations/{i}" for i in found] + entries
    if isinstance(exp, OeeWithin | ThroughputWithin):
        scope, ident = (
            ("line", exp.line) if exp.line else ("work_unit", getattr(exp, "work_unit", ""))
        )
        k = _kpi(obs, scope, ident or "")
        return [f"#/kpis/{obs.kpis.index(k)}"] if k is not None else []
    if isinstance(exp, ReconciliationExact):
        return ["#/reconciliation"]
    if isinstance(exp, MirrorExact):
        return ["#/mirror"]
    if isinstance(exp, EventsLossWithin):
        return ["#/events"]
    if isinstance(exp, ApiLatencyWithin):
        return ["#/api_latency"]
    return []  # pragma: no cover


def _evaluate(exp: Expectation, obs: Observed) -> tuple[bool, str]:
    if isinstance(exp, CUSTOM_TYPES):
        return evaluate_custom(exp, obs)
    if isinstance(exp, AllOrdersCompleted):
        missing = [o for o in obs.order_ids if obs.order_states.get(o) not in DONE_STATES]
        done = len(obs.order_ids) - len(missing)
        if not obs.order_ids:
            return False, "the scenario released no orders"
        if not missing:
            return True, f"{done} of {len(obs.order_ids)} job orders completed"
        shown = ", ".join(f"{o} ({obs.order_states.get(o, 'unknown to the MES')})" for o in missing)
        return False, f"{done} of {len(obs.order_ids)} completed; not completed: {shown}"
    if isinstance(exp, OrderInState):
        state = obs.order_states.get(exp.order)
        return state == exp.state, f"job order {exp.order} is {state or 'unknown to the MES'}, " + (
            f"expected {exp.state}"
        )
    if isinstance(exp, LotInState):
        lot_state = obs.lot_states.get(exp.lot)
        return lot_state == exp.state, (
            f"lot {exp.lot} is {lot_state or 'unknown to the MES'}, expected {exp.state}"
        )
    if isinstance(exp, DeviationRefused):
        dev = next((d for d in obs.deviations if d.name == exp.deviation), None)
        if dev is None:
            return False, f"deviation {exp.deviation} was never injected"
        if dev.outcome not in ("refused", "caught"):
            return False, f"deviation {exp.deviation}: {dev.outcome}: {dev.message}"
        if exp.rule and (dev.rule is None or exp.rule not in dev.rule):
            return False, (
                f"deviation {exp.deviation} {dev.outcome} with rule {dev.rule}, "
                f"expected {exp.rule}: {dev.message}"
            )
        if exp.recorded and dev.outcome == "refused" and not dev.recorded:
            return False, (
                f"deviation {exp.deviation} refused with rule {dev.rule} but the refusal is "
                f"not in the MES's audit trail: {dev.message}"
            )
        where = " (in the audit trail)" if dev.recorded else ""
        if dev.audit_entry:
            where = f" (audit entry {dev.audit_entry})"
        return True, (
            f"deviation {exp.deviation} {dev.outcome} with rule {dev.rule}{where}: {dev.message}"
        )
    if isinstance(exp, OeeWithin):
        scope, ident = ("line", exp.line) if exp.line else ("work_unit", exp.work_unit or "")
        k = _kpi(obs, scope, ident)
        ok, detail = _bounds(k.oee if k else None, exp.min, exp.max, f"OEE of {scope} {ident}")
        if k and k.master_data_errors:  # an OEE built on an impossible factor proves nothing
            ok, detail = False, f"{detail}; but {'; '.join(k.master_data_errors)}"
        return ok, detail + (f" (computed by the {k.source})" if k else "")
    if isinstance(exp, ThroughputWithin):
        k = _kpi(obs, "line", exp.line)
        ok, detail = _bounds(
            k.throughput_per_hour if k else None, exp.min, exp.max, f"units/h of {exp.line}"
        )
        return ok, detail + (f" (computed by the {k.source})" if k else "")
    if isinstance(exp, ReconciliationExact):
        rec = obs.reconciliation
        if not rec.rows:
            return False, "nothing to reconcile: neither side recorded anything"
        if rec.exact:
            return True, f"all {len(rec.rows)} rows match"
        head = "; ".join(rec.mismatches[:5])
        more = f" (and {len(rec.mismatches) - 5} more)" if len(rec.mismatches) > 5 else ""
        return False, f"{len(rec.mismatches)} of {len(rec.rows)} rows differ: {head}{more}"
    if isinstance(exp, MirrorExact):
        if obs.mirror is None:
            return False, "the run has no mirror report (the mirror did not finish)"
        return obs.mirror.verdict == "passed", f"{obs.mirror.path}: {obs.mirror.detail}"
    if isinstance(exp, EventsLossWithin):
        ev = obs.events
        ok = ev.lost <= exp.max_lost and ev.duplicated <= exp.max_duplicated
        return ok, (
            f"{ev.lost} lost (max {exp.max_lost}), {ev.duplicated} duplicated "
            f"(max {exp.max_duplicated}); {ev.sent} sent, {ev.ingested} ingested"
            + (f"; {ev.detail}" if ev.detail else "")
        )
    if isinstance(exp, ApiLatencyWithin):
        lat = obs.latency
        if lat.count == 0:
            return False, "no API call was measured"
        parts = []
        ok = True
        for label, limit, value in (
            ("p50", exp.p50_ms, lat.p50_ms),
            ("p95", exp.p95_ms, lat.p95_ms),
            ("p99", exp.p99_ms, lat.p99_ms),
        ):
            if limit is None:
                continue
            good = value is not None and value <= limit
            ok = ok and good
            parts.append(f"{label} {value:.1f} ms (max {limit:g})" if value is not None else label)
        return ok, f"{', '.join(parts) or 'no bound given'} over {lat.count} calls"
    raise AssertionError(f"unhandled expectation type {exp.type}")  # pragma: no cover


def check_all(expectations: list[Expectation], obs: Observed) -> list[ExpectationResult]:
    """Evaluate every expectation, in scenario order; run problems fail nothing by
    themselves but are added as a failing result so they cannot be overlooked."""
    results = [check(e, obs) for e in expectations]
    for problem in obs.problems:
        results.append(
            ExpectationResult(
                name="run completed cleanly", type="run", passed=False, detail=problem
            )
        )
    return results
