"""Expectations a QA reviewer adds beyond the fixed set: a genealogy link present or
absent, labour hours per job order within bounds, an audit entry, an SPC rule fired, a
signature, a job order's or lot's state at a plant time (from the state history the MES
recorded), and a condition over the run's figures (``plant_models.expression``). Plain
data: judged on :class:`Observed` like the others (:func:`state_histories` reads what
``state_at`` needs from the system under test at the end of the run)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from plant_models.expression import ExpressionError, evaluate, names_used
from plant_models.scenario import (
    AuditEntryExists,
    ExpressionHolds,
    GenealogyLink,
    LabourHoursWithin,
    SignatureExists,
    SpcRuleFired,
    StateAt,
)
from twin.scenario.sut import SignatureRecord, StateChange, StateHistory

if TYPE_CHECKING:
    from twin.scenario.expectations import Observed

CUSTOM_TYPES = (
    GenealogyLink,
    LabourHoursWithin,
    AuditEntryExists,
    SpcRuleFired,
    SignatureExists,
    StateAt,
    ExpressionHolds,
)
Custom = (
    GenealogyLink
    | LabourHoursWithin
    | AuditEntryExists
    | SpcRuleFired
    | SignatureExists
    | StateAt
    | ExpressionHolds
)
MAX_CITED = 5  # audit entries cited as evidence
KPI_FIGURES = (
    "availability",
    "performance",
    "quality",
    "oee",
    "throughput_per_hour",
    "good",
    "scrap",
    "scrap_ratio",
)
DONE_STATES = frozenset({"completed", "closed"})


# What an expression's figures and functions are measured with: without the capability
# (twin.scenario.sut.CAPABILITIES) the expression is not_checked, never judged on zeros.
_NEEDS = {"events.": "event_ingest", "latency.": "api_latency", "kpi": "kpis", "labour": "labour"}


def capabilities(exp: object) -> list[str]:
    """The optional capabilities of the system under test ``exp`` is checked with, beyond
    ``twin.scenario.expectations.needs``."""
    if not isinstance(exp, ExpressionHolds):
        return []
    used = names_used(exp.expr)
    return sorted(
        {cap for prefix, cap in _NEEDS.items() for name in used if name.startswith(prefix)}
    )


def _signatures(exp: SignatureExists, obs: Observed) -> list[SignatureRecord]:
    return [
        s
        for s in obs.signatures
        if s.meaning == exp.meaning and (exp.object is None or s.object_ref == exp.object)
    ]


def state_key(exp: StateAt) -> tuple[str, str]:
    """(kind, id) of the job order or lot ``exp`` asks about."""
    return ("job_order", exp.order) if exp.order is not None else ("lot", exp.lot or "")


def state_histories(
    sut: object, expectations: list[Any]
) -> dict[tuple[str, str], list[StateChange] | None]:
    """The state history the MES recorded of each job order and lot a ``state_at``
    expectation names (nothing when ``sut`` keeps none: those are not checked)."""
    if not isinstance(sut, StateHistory):
        return {}
    keys = {state_key(x) for x in expectations if isinstance(x, StateAt)}
    return {key: sut.state_history(*key) for key in sorted(keys)}


def plant_clock(seconds: float) -> str:
    """Plant seconds as ``6h45m`` (and the seconds when there are any)."""
    whole = round(seconds)
    h, rest = divmod(abs(whole), 3600)
    m, s = divmod(rest, 60)
    text = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return ("-" if whole < 0 else "") + (text or "0s")


def _state_at(exp: StateAt, obs: Observed) -> tuple[StateChange | None, list[StateChange] | None]:
    """The last change at or before ``exp.at`` and the whole history (None: unknown)."""
    history = obs.histories.get(state_key(exp))
    if history is None:
        return None, None
    before = [c for c in history if c.at <= exp.at]
    return (before[-1] if before else None), history


def _evaluate_state_at(exp: StateAt, obs: Observed) -> tuple[bool, str]:
    kind, ident = state_key(exp)
    what = f"{'job order' if kind == 'job_order' else 'lot'} {ident}"
    when = f"at {plant_clock(exp.at)} ({exp.at:g} s)"
    change, history = _state_at(exp, obs)
    if history is None:
        return False, f"{what} is unknown to the MES; expected {exp.state} {when}"
    if change is None:
        first = (
            f" (its first: {history[0].state} at {plant_clock(history[0].at)})" if history else ""
        )
        return False, (
            f"the MES recorded no state of {what} at or before {plant_clock(exp.at)}{first}; "
            f"expected {exp.state} {when}"
        )
    return change.state == exp.state, (
        f"{what} was {change.state} {when}, since {plant_clock(change.at)} in the MES's state "
        f"history; expected {exp.state}"
    )


def _row_index(obs: Observed, entity: str, ident: str, quantity: str) -> int | None:
    for i, row in enumerate(obs.reconciliation.rows):
        if row.entity == entity and row.id == ident and row.quantity == quantity:
            return i
    return None


def _mes_edges(obs: Observed) -> dict[str, list[str]]:
    """The MES's genealogy as lot in -> lots out, from the reconciliation's edge rows."""
    out: dict[str, list[str]] = {}
    for row in obs.reconciliation.rows:
        if row.entity == "genealogy" and row.quantity == "edge" and row.mes is not None:
            lot_in, _, lot_out = row.id.partition(" -> ")
            out.setdefault(lot_in, []).append(lot_out)
    return out


def _genealogy_path(obs: Observed, from_lot: str, to_lot: str) -> list[str] | None:
    """The lots from ``from_lot`` to ``to_lot`` in the MES's genealogy at any depth (a lot
    goes into an intermediate lot that goes into the batch: ISA-95 traces through every
    level), or None when ``from_lot`` never went into ``to_lot``."""
    edges = _mes_edges(obs)
    came_from: dict[str, str | None] = {from_lot: None}
    queue = deque([from_lot])
    while queue:
        lot = queue.popleft()
        if lot == to_lot:
            path = [lot]
            while (prev := came_from[path[-1]]) is not None:
                path.append(prev)
            return path[::-1]
        for nxt in edges.get(lot, []):
            if nxt not in came_from:
                came_from[nxt] = lot
                queue.append(nxt)
    return None


def _edge_rows(obs: Observed, path: list[str]) -> list[int]:
    found = (_row_index(obs, "genealogy", f"{a} -> {b}", "edge") for a, b in pairwise(path))
    return [i for i in found if i is not None]


def _labour(obs: Observed, order: str) -> float:
    i = _row_index(obs, "job_order", order, "labour hours")
    mes = obs.reconciliation.rows[i].mes if i is not None else None
    return mes or 0.0


def figures(obs: Observed) -> dict[str, float | None]:
    """The named figures of :data:`plant_models.expression.FIGURES`, from ``obs``."""
    outcomes = [d.outcome for d in obs.deviations]
    return {
        "orders.total": len(obs.order_ids),
        "orders.completed": sum(obs.order_states.get(o) in DONE_STATES for o in obs.order_ids),
        "events.sent": obs.events.sent,
        "events.ingested": obs.events.ingested,
        "events.lost": obs.events.lost,
        "events.duplicated": obs.events.duplicated,
        "events.replayed": obs.events.replayed,
        "latency.count": obs.latency.count,
        "latency.p50_ms": obs.latency.p50_ms,
        "latency.p95_ms": obs.latency.p95_ms,
        "latency.p99_ms": obs.latency.p99_ms,
        "latency.max_ms": obs.latency.max_ms,
        "reconciliation.rows": len(obs.reconciliation.rows),
        "reconciliation.mismatches": len(obs.reconciliation.mismatches),
        "deviations.injected": sum(o != "not_injected" for o in outcomes),
        "deviations.refused": outcomes.count("refused"),
        "deviations.caught": outcomes.count("caught"),
        "deviations.accepted": outcomes.count("accepted"),
    }


def _kpi_function(obs: Observed) -> Callable[[str, str], float | None]:
    def kpi(ident: str, name: str) -> float | None:
        if name not in KPI_FIGURES:
            raise ValueError(f"{name!r} is not a KPI; one of {', '.join(KPI_FIGURES)}")
        found = [k for k in obs.kpis if k.id == ident]
        found.sort(key=lambda k: k.source != "mes")  # the MES's own figure first
        if not found:
            raise ValueError(f"no KPI of {ident!r} in this run")
        value = getattr(found[0], name)
        return float(value) if value is not None else None

    return kpi


def evaluate_custom(exp: Custom, obs: Observed) -> tuple[bool, str]:
    """Pass/fail and why, for one of :data:`CUSTOM_TYPES`."""
    if isinstance(exp, GenealogyLink):
        edge = f"{exp.from_lot} -> {exp.to_lot}"
        path = _genealogy_path(obs, exp.from_lot, exp.to_lot)
        want = "holds" if exp.present else "does not hold"
        if path is None:
            return not exp.present, f"the MES's genealogy does not hold {edge}; expected it {want}"
        via = f" (through {' -> '.join(path[1:-1])})" if len(path) > 2 else ""
        return exp.present, f"the MES's genealogy holds {edge}{via}; expected it {want}"
    if isinstance(exp, LabourHoursWithin):
        hours = _labour(obs, exp.order)
        ok = (exp.min is None or hours >= exp.min) and (exp.max is None or hours <= exp.max)
        lo = "-inf" if exp.min is None else f"{exp.min:g}"
        rng = f"[{lo}, {'inf' if exp.max is None else f'{exp.max:g}'}]"
        return ok, f"labour on job order {exp.order} = {hours:.4g} h (MES), expected within {rng}"
    if isinstance(exp, SignatureExists):
        signed = _signatures(exp, obs)
        on = f" on {exp.object}" if exp.object else ""
        meanings = sorted({s.meaning for s in obs.signatures})
        return len(signed) >= exp.min_count, (
            f"{len(signed)} signatures meaning {exp.meaning}{on} recorded by the MES, expected "
            f"at least {exp.min_count} (meanings recorded: {', '.join(meanings) or 'none'})"
        )
    if isinstance(exp, SpcRuleFired):
        fired = obs.spc.get(exp.characteristic)
        if fired is None:
            return False, f"the MES has no inspection characteristic {exp.characteristic}"
        count = fired.get(exp.rule, 0) if exp.rule else sum(fired.values())
        rule = f"Nelson rule {exp.rule}" if exp.rule else "any SPC rule"
        shown = ", ".join(f"rule {r}: {n}" for r, n in sorted(fired.items())) or "none"
        return count >= exp.min_count, (
            f"{count} results of {exp.characteristic} flagged by {rule}, expected at least "
            f"{exp.min_count} (flagged per rule: {shown})"
        )
    if isinstance(exp, StateAt):
        return _evaluate_state_at(exp, obs)
    if isinstance(exp, AuditEntryExists):
        found = obs.audit_entries.get((exp.action, exp.object), [])
        on = f" on {exp.object}" if exp.object else ""
        return len(found) >= exp.min_count, (
            f"{len(found)} audit entries of {exp.action}{on} in the MES, expected at least "
            f"{exp.min_count}"
        )
    try:
        value = evaluate(
            exp.expr, figures(obs), {"kpi": _kpi_function(obs), "labour": lambda o: _labour(obs, o)}
        )
    except ExpressionError as exc:
        return False, f"{exp.expr}: cannot be evaluated: {exc}"
    if not isinstance(value, bool):
        return False, f"{exp.expr} = {value!r}: not a condition (true or false)"
    return value, f"{exp.expr} is {'true' if value else 'false'}"


def custom_evidence(exp: Custom, obs: Observed) -> list[str]:
    if isinstance(exp, GenealogyLink):
        path = _genealogy_path(obs, exp.from_lot, exp.to_lot)
        rows = _edge_rows(obs, path) if path else []
        return [f"#/reconciliation/rows/{i}" for i in rows] or ["#/reconciliation/rows"]
    if isinstance(exp, LabourHoursWithin):
        i = _row_index(obs, "job_order", exp.order, "labour hours")
        return [f"#/reconciliation/rows/{i}"] if i is not None else ["#/reconciliation/rows"]
    if isinstance(exp, AuditEntryExists):
        found = obs.audit_entries.get((exp.action, exp.object), [])
        cited = [
            f"MES audit entry {e.entry_id}" + (f" hash {e.entry_hash}" if e.entry_hash else "")
            for e in found[:MAX_CITED]
        ]
        more = [f"and {len(found) - MAX_CITED} more"] if len(found) > MAX_CITED else []
        return cited + more
    if isinstance(exp, SignatureExists):
        return [
            f"MES audit entry {s.entry_id} on {s.object_ref}: {s.manifestation}"
            + (f" (binding hash {s.binding_hash})" if s.binding_hash else "")
            for s in _signatures(exp, obs)[:MAX_CITED]
        ]
    if isinstance(exp, SpcRuleFired):
        return [f"MES inspection results of characteristic {exp.characteristic}"]
    if isinstance(exp, StateAt):
        change, history = _state_at(exp, obs)
        if change is not None:
            return [change.evidence]
        kind, ident = state_key(exp)
        n = len(history or [])
        return [f"MES state history of {kind.replace('_', ' ')} {ident} ({n} changes)"]
    return ["#/events", "#/kpis", "#/api_latency", "#/reconciliation", "#/deviations", "#/orders"]
