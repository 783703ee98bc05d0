"""Plausibility of the ISO 22400-2 KPIs a run reports.

Availability, effectiveness and quality ratio are fractions of a whole by construction
(ISO 22400-2:2014, clause 6: availability = APT / PBT, effectiveness = PRU x PQ / APT,
quality ratio = GQ / PQ; each ranges 0 to 1). A factor above 100 % is therefore not a
good day but wrong master data: most often a routing standard run time (PRU) slower than
the machine really runs, so the machine "beats" its own standard. The report flags each
such figure as a master-data error instead of letting it pass into an OEE.
"""

from __future__ import annotations

from twin.scenario.report import KpiRecord

#: A ratio above 1 by more than this is flagged (below it: floating-point noise).
TOLERANCE = 1e-6

_CAUSES = {
    "availability": "APT above PBT: the shift calendar plans less time than the unit ran "
    "(ISO 22400-2:2014 availability = APT / PBT)",
    "performance": "the routing's planned run time per unit (PRU) is slower than the "
    "machine really runs (ISO 22400-2:2014 effectiveness = PRU x PQ / APT); set the "
    "segment's standard run time to the machine's ideal cycle",
    "quality": "more good units than produced units (ISO 22400-2:2014 quality ratio = GQ / PQ)",
}


def master_data_errors(kpi: KpiRecord) -> list[str]:
    """One sentence per ISO 22400-2 factor of ``kpi`` above 100 %."""
    out = []
    names = {"availability": "availability", "performance": "effectiveness", "quality": "quality"}
    for field, label in names.items():
        value = getattr(kpi, field)
        if value is not None and value > 1 + TOLERANCE:
            out.append(
                f"master-data error: {label} of {kpi.scope.replace('_', ' ')} {kpi.id} is "
                f"{value:.1%}, above 100 %: {_CAUSES[field]}"
            )
    return out


def flag_master_data_errors(kpis: list[KpiRecord]) -> list[KpiRecord]:
    """``kpis`` with each record's ``master_data_errors`` filled in."""
    return [k.model_copy(update={"master_data_errors": master_data_errors(k)}) for k in kpis]
