"""The plant model format: shipped models load; every error names file, line, field."""

from __future__ import annotations

from pathlib import Path

import pytest

# Import from the modules, not the package: under pytest ``tests/plant_models`` is found
# first on sys.path and shadows the package's ``__init__``.
from plant_models.distributions import Exponential, Lognormal, Triangular
from plant_models.durations import parse_duration
from plant_models.loader import SHIPPED_MODELS, PlantModelError, load_plant_model, parse_plant_model

MINIMAL = """\
plant:
  code: P
lines:
  - code: L1
    work_units:
      - code: L1-A
        equipment_class: Filler
        cycle_time: {kind: exponential, mean: 2.0}
      - code: L1-B
        equipment_class: Capper
        cycle_time: 1.5
    buffers:
      - {code: L1-B1, upstream: L1-A, downstream: L1-B, capacity: 5}
"""


def _error(text: str) -> PlantModelError:
    with pytest.raises(PlantModelError) as info:
        parse_plant_model(text, name="plant.yaml")
    return info.value


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_shipped_models_load(name: str) -> None:
    model = load_plant_model(name)
    assert model.lines and all(line.work_units for line in model.lines)


def test_reference_plant_has_ten_lines_of_twenty_work_units() -> None:
    model = load_plant_model("reference_plant")
    assert [len(line.work_units) for line in model.lines] == [20] * 10
    codes = [wu.code for wu in model.all_work_units()]
    assert len(set(codes)) == 200


def test_bottling_line_has_filler_capper_labeler_case_packer_with_buffers() -> None:
    model = load_plant_model("bottling_line")
    line = model.lines[0]
    assert [wu.equipment_class for wu in line.work_units] == [
        "Filler",
        "Capper",
        "Labeler",
        "CasePacker",
    ]
    assert len(line.buffers) == 3


def test_tablet_line_has_in_process_checks_on_its_segments() -> None:
    model = load_plant_model("tablet_line")
    classes = [wu.equipment_class for wu in model.lines[0].work_units]
    assert classes == ["DispensingBooth", "Granulator", "TabletPress", "Coater", "BlisterPacker"]
    inspections = [i.name for p in model.products for s in p.segments for i in s.inspections]
    assert {"tablet_weight", "loss_on_drying", "weight_gain"} <= set(inspections)
    deviations = {lot.deviation for lot in model.material_lots}
    assert {"expired", "short", "wrong_material"} <= deviations


def test_a_bare_number_or_duration_is_a_deterministic_distribution() -> None:
    model = parse_plant_model(MINIMAL)
    assert model.lines[0].work_units[1].cycle_time.mean() == 1.5
    assert isinstance(model.lines[0].work_units[0].cycle_time, Exponential)


def test_distribution_means_are_exact() -> None:
    assert Triangular(kind="triangular", low=1, mode=2, high=6).mean() == 3
    assert Lognormal.model_validate({"kind": "lognormal", "mean": 5, "sd": 2}).mean() == 5


def test_error_names_file_line_column_and_field_path() -> None:
    text = MINIMAL.replace("mean: 2.0", "mean: -2.0")
    err = _error(text)
    assert str(err) == (
        "plant.yaml:8:47: lines[0].work_units[0].cycle_time.mean: Input should be greater than 0"
    )


def test_unknown_key_is_an_error_at_the_key() -> None:
    text = MINIMAL.replace(
        "        equipment_class: Capper\n", "        equipment_class: Capper\n        speeed: 3\n"
    )
    err = _error(text)
    assert len(err.problems) == 1
    problem = err.problems[0]
    assert (problem.line, problem.column) == (11, 9)
    assert problem.path == "lines[0].work_units[1].speeed"
    assert "unknown field" in problem.message


def test_missing_field_is_named_and_points_at_its_parent() -> None:
    text = MINIMAL.replace("        equipment_class: Filler\n", "")
    err = _error(text)
    assert [p.path for p in err.problems] == ["lines[0].work_units[0].equipment_class"]
    assert err.problems[0].line == 6
    assert err.problems[0].message == "field required"


def test_unknown_distribution_kind_lists_the_accepted_kinds() -> None:
    err = _error(MINIMAL.replace("kind: exponential", "kind: weibull"))
    message = str(err)
    assert "plant.yaml:8:" in message
    assert "lines[0].work_units[0].cycle_time" in message
    assert "deterministic" in message and "empirical" in message


def test_every_problem_is_reported_one_line_each() -> None:
    text = MINIMAL.replace("mean: 2.0", "mean: 0").replace("capacity: 5", "capacity: -1")
    err = _error(text)
    lines = str(err).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("plant.yaml:8:")
    assert lines[1].startswith("plant.yaml:13:") and "buffers[0].capacity" in lines[1]


def test_buffer_between_non_consecutive_work_units_is_refused() -> None:
    text = MINIMAL.replace(
        "      - code: L1-B\n",
        "      - code: L1-X\n        equipment_class: X\n        cycle_time: 1\n"
        "      - code: L1-B\n",
    )
    err = _error(text)
    assert len(err.problems) == 1
    problem = err.problems[0]
    assert problem.path == "lines[0].buffers[0].downstream"
    assert "expected the station after L1-A (L1-X)" in problem.message
    assert problem.line == 16


def test_duplicate_codes_are_refused_with_the_first_occurrence() -> None:
    err = _error(MINIMAL.replace("code: L1-B\n", "code: L1-A\n"))
    assert "duplicate equipment code 'L1-A' (first at lines[0].work_units[0].code)" in str(err)


def test_product_segment_must_find_its_equipment_class_on_the_line() -> None:
    text = (
        MINIMAL
        + """\
materials: [{id: FG, unit: ea}]
products:
  - id: P1
    material: FG
    line: L1
    segments:
      - {id: S1, equipment_class: Capper, standard_run_time: 1}
      - {id: S2, equipment_class: Filler, standard_run_time: 1}
"""
    )
    err = _error(text)
    assert len(err.problems) == 1
    assert err.problems[0].path == "products[0].segments[1].equipment_class"
    assert err.problems[0].line == 21


def test_cross_reference_errors_name_what_is_missing() -> None:
    text = (
        MINIMAL
        + """\
order_stream:
  job_orders:
    - {id: J1, product: NOPE, quantity: 5, due: 1h}
"""
    )
    err = _error(text)
    assert str(err) == "plant.yaml:16:25: order_stream.job_orders[0].product: no product 'NOPE'"


def test_yaml_syntax_error_names_the_line() -> None:
    err = _error("plant:\n  code: [unclosed\nlines: []\n")
    assert err.problems[0].line >= 2 and "not valid YAML" in err.problems[0].message


def test_missing_file_is_a_plant_model_error(tmp_path: Path) -> None:
    with pytest.raises(PlantModelError, match="cannot read"):
        load_plant_model(tmp_path / "nope.yaml")


def test_expired_deviation_lot_must_really_be_expired() -> None:
    text = (
        MINIMAL
        + """\
materials: [{id: M, unit: kg}]
material_lots:
  - {id: LOT1, material: M, quantity: 5, expiry: 2030-01-01, deviation: expired}
"""
    )
    err = _error(text)
    assert err.problems[0].path == "material_lots[0].expiry"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("30m", 1800.0),
        ("8h", 28800.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        (12, 12.0),
    ],
)
def test_durations_are_parsed(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["8x", "h", "", "1h 2", True])
def test_bad_durations_are_refused(text: str | bool) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_a_model_built_in_code_is_checked_for_references_too() -> None:
    from pydantic import ValidationError

    from plant_models.schema import PlantModel

    data = {
        "plant": {"code": "P"},
        "lines": [
            {
                "code": "L1",
                "work_units": [
                    {"code": "A", "equipment_class": "X", "cycle_time": 1, "operator_skill": "nope"}
                ],
            }
        ],
    }
    with pytest.raises(ValidationError, match=r"lines\[0\]\.work_units\[0\]\.operator_skill"):
        PlantModel.model_validate(data)


PRESS = """\
plant:
  code: P
lines:
  - code: L1
    work_units:
      - code: L1-PRESS
        equipment_class: TabletPress
        cycle_time: {kind: normal, mean: 30m, sd: 1m}
        process_values:
          - {name: TabletWeight, unit: mg, distribution: {kind: normal, mean: 500, sd: 3},
             characteristic: tablet_weight}
materials: [{id: FG-A, unit: ea}, {id: FG-B, unit: ea}]
products:
  - id: P500
    material: FG-A
    line: L1
    segments:
      - id: COMPRESS
        equipment_class: TabletPress
        standard_run_time: 29m
        inspections:
          - {name: tablet_weight, lsl: 485, target: 500, usl: 515, sampling: {every_units: 1}}
  - id: P400
    material: FG-B
    line: L1
    segments:
      - id: COMPRESS
        equipment_class: TabletPress
        standard_run_time: 29m
        inspections:
          - {name: tablet_weight, lsl: 388, target: 400, usl: 412, sampling: {every_units: 1}}
"""


def test_process_value_outside_a_products_spec_is_refused_at_its_distribution() -> None:
    """Issue 13: TabletWeight N(500, 3) for every product, while a 400 mg product's spec is
    388-412 mg: a clean run would make out-of-spec product, so the model is refused."""
    err = _error(PRESS)
    assert len(err.problems) == 1
    problem = err.problems[0]
    assert problem.path == "lines[0].work_units[0].process_values[0].distribution"
    assert problem.line == 10
    assert "TabletWeight for product P400 ranges 491 to 509 mg" in problem.message
    assert "spec 388 to 412" in problem.message
    assert "products[1].segments[0].inspections[0]" in problem.message


def test_process_value_per_product_makes_each_product_in_spec() -> None:
    text = PRESS.replace(
        "characteristic: tablet_weight}",
        "characteristic: tablet_weight,\n"
        "             per_product: {P400: {kind: normal, mean: 400, sd: 2.5}}}",
    )
    model = parse_plant_model(text, name="plant.yaml")
    pv = model.lines[0].work_units[0].process_values[0]
    assert pv.per_product["P400"].mean() == 400
    narrow = text.replace("mean: 400, sd: 2.5", "mean: 400, sd: 5")  # 385-415: not capable
    err = _error(narrow)
    assert [p.path for p in err.problems] == [
        "lines[0].work_units[0].process_values[0].per_product.P400"
    ]
    unknown = text.replace("{P400: {kind", "{P999: {kind")
    assert "no product 'P999'" in str(_error(unknown))


def test_standard_run_time_slower_than_the_machines_mean_cycle_is_refused() -> None:
    """ISO 22400-2:2014 effectiveness = PRU x PQ / APT: a routing PRU above the machine's
    mean cycle (bottling shipped 0.5 s against a 0.43 s capper: 113-123 %) is master data
    that makes every good day look impossible."""
    capable = PRESS.replace(
        "characteristic: tablet_weight}",
        "characteristic: tablet_weight,\n"
        "             per_product: {P400: {kind: normal, mean: 400, sd: 2.5}}}",
    )
    parse_plant_model(capable, name="plant.yaml")
    err = _error(capable.replace("standard_run_time: 29m", "standard_run_time: 31m", 1))
    assert [p.path for p in err.problems] == ["products[0].segments[0].standard_run_time"]
    assert "1860 s per unit is slower than L1-PRESS's mean cycle time 1800 s" in str(err)


def test_an_intermediate_output_material_must_exist_and_not_be_on_the_last_segment() -> None:
    text = (
        MINIMAL
        + """\
materials: [{id: FG, unit: ea}, {id: BULK, unit: ea}]
products:
  - id: P1
    material: FG
    line: L1
    segments:
      - {id: S1, equipment_class: Filler, standard_run_time: 1, output_material: NOPE}
      - {id: S2, equipment_class: Capper, standard_run_time: 1, output_material: BULK}
"""
    )
    err = _error(text)
    found = {(p.path, p.line) for p in err.problems}
    assert found == {
        ("products[0].segments[0].output_material", 20),
        ("products[0].segments[1].output_material", 21),
    }
    messages = " ".join(p.message for p in err.problems)
    assert "no material 'NOPE'" in messages
    assert "the last segment makes the product's material 'FG'" in messages


def test_tablet_line_granulation_produces_the_granulate_compression_takes_in() -> None:
    from plant_models.schema import intake_of

    for product in load_plant_model("tablet_line").products:
        granulate = next(s for s in product.segments if s.id == "GRANULATE")
        assert granulate.output_material == f"GRAN-{product.id}"
        assert intake_of(product, "COMPRESS") == [f"GRAN-{product.id}"]
        assert intake_of(product, "GRANULATE") == []


STATION = """\
plant:
  code: P
lines:
  - code: L1
    work_units:
      - {code: L1-A, equipment_class: Feeder, cycle_time: 1}
      - {code: L1-F1, equipment_class: Filler, cycle_time: 2, station: L1-FILL}
      - {code: L1-F2, equipment_class: Filler, cycle_time: 3, station: L1-FILL}
      - {code: L1-C, equipment_class: Capper, cycle_time: 1}
    buffers:
      - {code: L1-B1, upstream: L1-A, downstream: L1-FILL, capacity: 5}
      - {code: L1-B2, upstream: L1-FILL, downstream: L1-C, capacity: 0}
"""


def test_a_parallel_station_and_a_capacity_zero_buffer_load() -> None:
    model = parse_plant_model(STATION, name="plant.yaml")
    assert [wu.station for wu in model.lines[0].work_units] == [None, "L1-FILL", "L1-FILL", None]
    assert model.lines[0].buffers[1].capacity == 0


@pytest.mark.parametrize(
    ("change", "line", "path", "message"),
    [
        (
            ("downstream: L1-FILL, capacity: 5", "downstream: L1-F1, capacity: 5"),
            11,
            "lines[0].buffers[0].downstream",
            "work unit L1-F1 is one of parallel station L1-FILL: name the station ('L1-FILL')",
        ),
        (
            ("equipment_class: Filler, cycle_time: 3", "equipment_class: Bottler, cycle_time: 3"),
            8,
            "lines[0].work_units[2].station",
            "share one equipment class ('Filler'), got 'Bottler'",
        ),
        (
            (
                "{code: L1-C, equipment_class: Capper, cycle_time: 1}",
                "{code: L1-C, equipment_class: Capper, cycle_time: 1, station: L1-FILL}",
            ),
            9,
            "lines[0].work_units[3].station",
            "share one equipment class",
        ),
        (
            ("capacity: 0}", "capacity: 0, transfer_time: 2}"),
            12,
            "lines[0].buffers[1].transfer_time",
            "a conveyor of capacity 0 holds nothing in transit",
        ),
        (
            ("station: L1-FILL}\n      - {code: L1-C", "station: L1-A}\n      - {code: L1-C"),
            8,
            "lines[0].work_units[2].station",
            "duplicate equipment code 'L1-A'",
        ),
    ],
)
def test_station_mistakes_are_named_at_their_line(
    change: tuple[str, str], line: int, path: str, message: str
) -> None:
    err = _error(STATION.replace(*change))
    problem = next(p for p in err.problems if p.path == path)
    assert message in problem.message
    assert problem.line == line


def test_station_work_units_must_be_consecutive() -> None:
    text = STATION.replace(
        "      - {code: L1-F2, equipment_class: Filler, cycle_time: 3, station: L1-FILL}\n", ""
    ).replace(
        "cycle_time: 1}\n    buffers",
        "cycle_time: 1}\n      - {code: L1-F2, equipment_class: Filler, cycle_time: 3, "
        "station: L1-FILL}\n    buffers",
    )
    err = _error(text)
    assert any(
        p.path == "lines[0].work_units[3].station" and "must be consecutive" in p.message
        for p in err.problems
    ), str(err)


REWORK = STATION.replace(
    "station: L1-FILL}\n      - {code: L1-C",
    "station: L1-FILL,\n         rework: {to: L1-FILL, probability: 0.1}}\n      - {code: L1-C",
)


def test_rework_to_the_station_itself_loads() -> None:
    model = parse_plant_model(REWORK, name="plant.yaml")
    rework = model.lines[0].work_units[2].rework
    assert rework is not None and (rework.to, rework.probability) == ("L1-FILL", 0.1)


@pytest.mark.parametrize(
    ("change", "line", "path", "message"),
    [
        (
            ("rework: {to: L1-FILL, probability: 0.1}", "rework: {to: L1-C, probability: 0.1}"),
            9,
            "lines[0].work_units[2].rework.to",
            "no station 'L1-C' at or before L1-F2",
        ),
        (
            ("rework: {to: L1-FILL, probability: 0.1}", "rework: {to: L1-F1, probability: 0.1}"),
            9,
            "lines[0].work_units[2].rework.to",
            "name its station ('L1-FILL')",
        ),
        (
            ("rework: {to: L1-FILL, probability: 0.1}", "rework: {to: L1-A, probability: 0.1}"),
            9,
            "lines[0].work_units[2].rework.to",
            "L1-A is the line's first station",
        ),
        (
            ("rework: {to: L1-FILL, probability: 0.1}", "rework: {to: L1-FILL}"),
            9,
            "lines[0].work_units[2].rework",
            "give exactly one of probability or rule",
        ),
        (
            (
                "rework: {to: L1-FILL, probability: 0.1}",
                "rework: {to: L1-FILL, rule: {value: Torque, high: 3}}",
            ),
            9,
            "lines[0].work_units[2].rework.rule.value",
            "L1-F2 has no process value 'Torque'",
        ),
        (
            (
                "{code: L1-C, equipment_class: Capper, cycle_time: 1}",
                "{code: L1-C, equipment_class: Capper, cycle_time: 1,\n"
                "         rework: {to: L1-C, probability: 0.1}}",
            ),
            11,
            "lines[0].work_units[3].rework",
            "last station, whose good count is the job order's output",
        ),
    ],
)
def test_rework_mistakes_are_named_at_their_line(
    change: tuple[str, str], line: int, path: str, message: str
) -> None:
    err = _error(REWORK.replace(*change))
    problem = next((p for p in err.problems if p.path == path), None)
    assert problem is not None, str(err)
    assert message in problem.message
    assert problem.line == line


def test_an_operator_attending_each_cycle_needs_a_skill() -> None:
    err = _error(
        STATION.replace(
            "cycle_time: 1}\n      - {code: L1-F1",
            "cycle_time: 1,\n         operator_attends: cycle}\n      - {code: L1-F1",
        )
    )
    problem = next(p for p in err.problems if p.path == "lines[0].work_units[0].operator_attends")
    assert "name the skill (operator_skill)" in problem.message
    assert problem.line == 7  # at the field
