"""The scenario schema and loader: valid files load, broken ones name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from plant_models.scenario import (
    DeviationRefused,
    ExpiredLot,
    OpcUaDrop,
    OutOfCalibration,
    OutOfSequenceStart,
    Scenario,
    UncertifiedOperator,
    WrongLot,
    load_scenario,
    shipped_scenarios,
)
from plant_models.scenario_yaml import DocumentError, load_text

GOOD = """\
name: tiny
plant: bottling
duration: 2h
seed: 7
speed: max
erp:
  orders:
    - {id: JO-1, product: WATER-500, quantity: 100}
  generate:
    - {prefix: GEN, product: WATER-500, quantity: 50, every: 30m, count: 3}
people:
  - {id: OP-1, role: operator}
timeline:
  - {type: opcua_drop, at: 30m, duration: 60s}
  - {type: wrong_lot, name: wrong-lot, at: 1h, lot: LOT-X}
expectations:
  - {type: all_orders_completed}
  - {type: deviation_refused, deviation: wrong-lot, rule: BOM}
  - {type: oee, line: L1, min: 0.5}
"""


def test_scenario_loads_durations_and_expands_the_order_stream() -> None:
    sc = load_text(GOOD, Scenario)
    assert sc.duration == 7200.0
    assert [o.id for o in sc.erp.expand()] == ["GEN-0001", "JO-1", "GEN-0002", "GEN-0003"]
    assert [o.release_at for o in sc.erp.expand()] == [0.0, 0.0, 1800.0, 3600.0]
    assert isinstance(sc.timeline[0], OpcUaDrop) and sc.timeline[0].duration == 60.0
    assert isinstance(sc.deviations[0], WrongLot)
    assert isinstance(sc.expectations[1], DeviationRefused)


def _problems(text: str) -> list[str]:
    with pytest.raises(DocumentError) as info:
        load_text(text, Scenario, name="sc.yaml")
    return [str(p) for p in info.value.problems]


def test_broken_scenario_error_names_file_line_and_field() -> None:
    text = GOOD.replace("duration: 60s", "duration: soon")
    problems = _problems(text)
    assert problems == [
        "sc.yaml:14: timeline.0.opcua_drop.duration: Value error, expected a duration such as "
        "90s, 30m, 8h, 1d or a number of seconds, got 'soon'"
    ]


def test_unknown_timeline_type_is_named_with_its_line() -> None:
    problems = _problems(GOOD.replace("type: wrong_lot", "type: wrong_lots"))
    assert len(problems) == 1
    assert problems[0].startswith("sc.yaml:15: timeline.1: ")
    assert "wrong_lots" in problems[0]


def test_missing_required_field_points_at_its_mapping() -> None:
    problems = _problems(GOOD.replace("plant: bottling\n", ""))
    assert problems == ["sc.yaml:1: plant: Field required"]


def test_expectation_on_a_deviation_never_injected_is_refused() -> None:
    problems = _problems(GOOD.replace("deviation: wrong-lot", "deviation: nope"))
    assert "deviation 'nope'" in problems[0]


def test_mirror_beside_the_link_and_its_expectation_are_checked_with_their_lines() -> None:
    mirrored = GOOD.replace("speed: max\n", "speed: max\nmirror: sparkplug\n")
    mirrored += "  - {type: mirror_exact}\n"
    assert load_text(mirrored, Scenario).mirror == "sparkplug"
    assert _problems(mirrored.replace("mirror: sparkplug", "mirror: kafka"))[0].startswith(
        "sc.yaml:6: mirror: Input should be 'sparkplug'"
    )
    same = mirrored.replace("speed: max\n", "speed: max\nlink: sparkplug\n")
    assert _problems(same) == [
        "sc.yaml:7: mirror: Value error, link is sparkplug already: the mirror is a second "
        "consumer beside the MES's link (use link: opcua, opcua-external or direct)"
    ]
    unmirrored = mirrored.replace("mirror: sparkplug\n", "")
    assert _problems(unmirrored) == [
        "sc.yaml:17: expectations: Value error, expectation 3 (mirror_exact) needs a mirror: "
        "add mirror: sparkplug"
    ]


def test_yaml_syntax_error_names_the_line() -> None:
    problems = _problems(GOOD.replace("seed: 7", "seed: [7"))
    assert problems[0].startswith("sc.yaml:")
    assert "(yaml)" in problems[0]


def test_bounds_need_min_or_max() -> None:
    problems = _problems(GOOD.replace("line: L1, min: 0.5", "line: L1"))
    assert "give min, max or both" in problems[0]
    assert problems[0].startswith("sc.yaml:19: expectations.2")


def test_every_shipped_scenario_loads() -> None:
    files = shipped_scenarios()
    assert files, "no scenarios shipped under plant_models/scenarios/"
    for path in files:
        sc = load_scenario(path)
        assert sc.expectations, f"{path} checks nothing"


def test_shipped_deviations_wait_for_the_event_that_tests_their_rule() -> None:
    """A shipped deviation that acts on an operation (a lot scanned, a start) or signs a
    disposition waits for its event (``when``), so the MES answers with the rule the
    deviation names, not with the state a fixed time happened to hit (INVALID_TRANSITION,
    an unrelated SEQUENCE, nothing to sign); each is named by a deviation_refused
    expectation with that rule. ~0.1 s."""
    on_operation = (WrongLot, ExpiredLot, OutOfSequenceStart, OutOfCalibration)
    checked = 0
    for path in shipped_scenarios():
        sc = load_scenario(path)
        rules = {x.deviation: x.rule for x in sc.expectations if isinstance(x, DeviationRefused)}
        for e in sc.deviations:
            acts = isinstance(e, on_operation) or (
                isinstance(e, UncertifiedOperator) and e.action == "start"
            )
            if acts:
                checked += 1
                assert e.when is not None, f"{path.name}: {e.name} fires on time only"
                assert e.order and e.operation, f"{path.name}: {e.name} targets no operation"
            if isinstance(e, UncertifiedOperator) and e.action == "sign":
                checked += 1
                assert e.when == "on_hold", f"{path.name}: {e.name} may find nothing to sign"
            assert rules.get(e.name), f"{path.name}: no expectation names {e.name}'s rule"
    assert checked, "no shipped deviation acts on an operation"


def test_missing_file_is_a_document_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"nope\.yaml"):
        load_scenario(tmp_path / "nope.yaml")


def test_readme_scenario_example_is_a_valid_scenario_for_its_plant() -> None:
    from plant_models.loader import load_plant_model
    from twin.scenario.runner import reference_problems

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Writing a scenario", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    sc = load_text(block, Scenario, name="README.md")
    plant = load_plant_model(sc.plant)
    assert reference_problems(sc, plant, Path("README.md")) == []
    assert len(sc.deviations) == 7 and len(sc.faults) == 6
    assert sc.deviations[-1].when == "operation_startable"
