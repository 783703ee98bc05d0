"""SPC on an inspection characteristic: Nelson rules 1-4, control limits, spec check."""

from __future__ import annotations

import pytest

from mes_core.quality.inspection import judge
from mes_core.quality.spc import (
    ControlLimits,
    NelsonRule,
    SpcError,
    SpecLimits,
    limits_from_first_in_control,
    limits_from_points,
    violated_rules,
)

LIMITS = ControlLimits(centre=10.0, sigma=1.0)


def test_nelson_rule_1_one_point_beyond_3_sigma() -> None:
    assert violated_rules([10.0, 13.01], LIMITS) == [NelsonRule.BEYOND_3_SIGMA]
    assert violated_rules([10.0, 6.9], LIMITS) == [NelsonRule.BEYOND_3_SIGMA]


def test_nelson_rule_1_point_on_the_3_sigma_limit_is_in_control() -> None:
    assert violated_rules([13.0], LIMITS) == []
    assert violated_rules([7.0], LIMITS) == []


def test_nelson_rule_2_nine_in_a_row_on_one_side() -> None:
    above = [10.5, 10.2, 10.8, 10.1, 10.4, 10.3, 10.6, 10.2, 10.5]
    assert violated_rules(above, LIMITS) == [NelsonRule.NINE_ON_ONE_SIDE]
    below = [20 - v for v in above]
    assert violated_rules(below, LIMITS) == [NelsonRule.NINE_ON_ONE_SIDE]


def test_nelson_rule_2_eight_in_a_row_or_a_point_on_the_centre_breaks_it() -> None:
    above = [10.5, 10.2, 10.8, 10.1, 10.4, 10.3, 10.6, 10.2]
    assert violated_rules(above, LIMITS) == []
    assert violated_rules([*above[:4], 10.0, *above[4:]], LIMITS) == []


def test_nelson_rule_3_six_in_a_row_steadily_increasing_or_decreasing() -> None:
    rising = [9.0, 9.2, 9.4, 9.6, 9.8, 10.1]
    assert violated_rules(rising, LIMITS) == [NelsonRule.SIX_TRENDING]
    falling = list(reversed([9.3, 9.5, 9.7, 9.9, 10.1, 10.3]))
    assert violated_rules(falling, LIMITS) == [NelsonRule.SIX_TRENDING]


def test_nelson_rule_3_five_rising_or_an_equal_step_is_no_trend() -> None:
    assert violated_rules([9.0, 9.2, 9.4, 9.6, 10.1], LIMITS) == []
    assert violated_rules([9.0, 9.2, 9.4, 9.4, 9.8, 10.1], LIMITS) == []


def test_nelson_rule_4_fourteen_in_a_row_alternating() -> None:
    alternating = [9.5 if i % 2 else 10.5 for i in range(14)]
    assert violated_rules(alternating, LIMITS) == [NelsonRule.FOURTEEN_ALTERNATING]


def test_nelson_rule_4_thirteen_alternating_is_in_control() -> None:
    alternating = [9.5 if i % 2 else 10.5 for i in range(13)]
    assert violated_rules(alternating, LIMITS) == []


def test_nelson_rules_can_fire_together() -> None:
    history = [10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 13.5]
    assert violated_rules(history, LIMITS) == [
        NelsonRule.BEYOND_3_SIGMA,
        NelsonRule.NINE_ON_ONE_SIDE,
        NelsonRule.SIX_TRENDING,
    ]


def test_control_limits_from_baseline_use_moving_range_over_d2() -> None:
    # Hand-worked: mean = 10.0; moving ranges 1, 2, 1 -> MR-bar = 4/3; sigma = 1.3333/1.128.
    limits = limits_from_points([10.0, 11.0, 9.0, 10.0])
    assert limits.centre == pytest.approx(10.0)
    assert limits.sigma == pytest.approx((4 / 3) / 1.128)
    assert limits.ucl == pytest.approx(10.0 + 3 * (4 / 3) / 1.128)


def test_control_limits_need_two_varying_points() -> None:
    with pytest.raises(SpcError, match="at least 2"):
        limits_from_points([1.0])
    with pytest.raises(SpcError, match="all baseline points are equal"):
        limits_from_points([1.0, 1.0, 1.0])
    with pytest.raises(SpcError, match="sigma must be > 0"):
        ControlLimits(centre=1.0, sigma=0.0)


def test_control_limits_from_first_n_in_control_points_drop_outliers() -> None:
    values = [10.0, 10.2, 9.8, 10.1, 9.9, 10.0, 25.0, 10.1, 9.9, 10.2, 9.8, 10.0, 10.1]
    limits = limits_from_first_in_control(values, 10)
    assert limits is not None
    # 25.0 is beyond the first estimate's 3 sigma: it never enters the baseline.
    assert limits == limits_from_points([v for v in values if v != 25.0][:10])


def test_control_limits_from_first_n_wait_for_enough_points() -> None:
    assert limits_from_first_in_control([10.0, 10.1, 9.9], 5) is None


def test_control_limits_from_first_n_skip_out_of_spec_points() -> None:
    spec = SpecLimits(lsl=9.0, usl=11.0)
    values = [10.0, 12.0, 10.2, 9.8, 10.1]
    limits = limits_from_first_in_control(values, 4, spec)
    assert limits == limits_from_points([10.0, 10.2, 9.8, 10.1])


def test_spec_limits_are_inclusive_and_either_side_may_be_open() -> None:
    spec = SpecLimits(lsl=9.0, usl=11.0)
    assert spec.violation(9.0) is None
    assert spec.violation(11.0) is None
    assert spec.violation(11.01) == "value 11.01 is above USL 11"
    assert spec.violation(8.5) == "value 8.5 is below LSL 9"
    assert SpecLimits(usl=5.0).violation(-1e9) is None
    assert SpecLimits(lsl=5.0).violation(float("nan")) == "value nan is not a finite number"


def test_spec_limits_refuse_lsl_above_usl() -> None:
    with pytest.raises(SpcError, match=r"LSL 2\.0 is above USL 1\.0"):
        SpecLimits(lsl=2.0, usl=1.0)


def test_out_of_spec_result_is_a_deviation_even_without_control_limits() -> None:
    verdict = judge(12.0, SpecLimits(lsl=9.0, usl=11.0), [], None)
    assert verdict.deviation
    assert verdict.describe("fill volume") == (
        "fill volume: out of specification (value 12 is above USL 11)"
    )


def test_in_spec_result_violating_an_spc_rule_is_a_deviation() -> None:
    history = [10.1, 10.2, 10.3, 10.4, 10.5]
    verdict = judge(10.6, SpecLimits(lsl=5.0, usl=15.0), history, LIMITS)
    assert verdict.out_of_spec is None
    assert verdict.rules == (NelsonRule.SIX_TRENDING,)
    assert verdict.deviation
    assert "Nelson rule 3" in verdict.describe("fill volume")


def test_in_spec_in_control_result_is_no_deviation() -> None:
    verdict = judge(10.2, SpecLimits(lsl=9.0, usl=11.0), [10.0, 9.8], LIMITS)
    assert not verdict.deviation
