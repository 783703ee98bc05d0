"""Holds have owners (mes_core.quality.holds): the pure rules, without a database."""

from __future__ import annotations

import pytest

from mes_core.domain.errors import RuleViolation
from mes_core.quality.holds import BY_HAND, OpenHold, holds_lifted_by_hand_release, stays_held


def test_a_release_by_hand_lifts_only_the_holds_placed_by_hand() -> None:
    held = [OpenHold(1, "NC-000001"), OpenHold(2, BY_HAND), OpenHold(3, BY_HAND)]
    lifted = holds_lifted_by_hand_release("job_order:B-26-0101", held)
    assert lifted == [2, 3]
    assert stays_held(held, lifted)


def test_a_release_by_hand_is_refused_when_only_nonconformances_hold() -> None:
    held = [OpenHold(1, "NC-000002"), OpenHold(4, "NC-000001")]
    with pytest.raises(RuleViolation) as refused:
        holds_lifted_by_hand_release("material_lot:L1", held)
    assert refused.value.rule.value == "HELD"
    assert "NC-000001, NC-000002" in refused.value.message
    assert refused.value.object_ref == "material_lot:L1"


def test_the_object_moves_when_no_hold_is_left_open() -> None:
    held = [OpenHold(2, BY_HAND)]
    assert not stays_held(held, holds_lifted_by_hand_release("job_order:J", held))
    assert holds_lifted_by_hand_release("job_order:J", []) == []
