"""A refused deviation's verdict cites the audit entry that records it (id and hash) as
evidence (issue 19). Plain data with a stand-in audit trail: under 1 s."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from test_scenario_expectations import _observed

from plant_models.scenario import DeviationRefused
from twin.scenario.deviations import DeviationInjector
from twin.scenario.expectations import check
from twin.scenario.sut import Refusal


class Trail:
    """Only what ``mark_recorded`` asks: the refusals of the audit trail."""

    def refusals(self) -> list[Refusal]:
        return [
            Refusal("LOT_EXPIRED", "lot:LOT-E", "expired", entry_id="7", entry_hash="aa"),
            Refusal(
                "MATERIAL_NOT_ON_BOM",
                "job_order:JO-1",
                "not on BOM",
                entry_id="12",
                entry_hash="c0ffee",
            ),
        ]

    # AuditTrail is a runtime-checkable Protocol: having ``refusals`` is what counts.


def test_a_refusal_cites_its_audit_entry_id_and_hash() -> None:
    obs = _observed()
    ctx = SimpleNamespace(sut=Trail(), state=SimpleNamespace(deviations=obs.deviations))
    DeviationInjector(cast(Any, ctx)).mark_recorded()
    wl = obs.deviations[0]
    assert wl.recorded is True and wl.audit_entry == "12 hash c0ffee"
    assert obs.deviations[1].audit_entry is None  # accepted: nothing to cite
    result = check(
        DeviationRefused(type="deviation_refused", deviation="wl", rule="MATERIAL_NOT_ON_BOM"),
        obs,
    )
    assert result.passed
    assert result.detail == (
        "deviation wl refused with rule MATERIAL_NOT_ON_BOM (audit entry 12 hash c0ffee): "
        "not on BOM"
    )
    assert result.evidence == ["#/deviations/0", "MES audit entry 12 hash c0ffee"]
