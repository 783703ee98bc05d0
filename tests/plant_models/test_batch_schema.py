"""Batch work units in the plant-model YAML (``plant_models.batch``): every mistake in a
batch's phases is named with file, line and field."""

from __future__ import annotations

import pytest

from plant_models.loader import PlantModelError, parse_plant_model

VESSEL = """\
plant:
  code: P
lines:
  - code: L1
    work_units:
      - code: L1-FEED
        equipment_class: Feeder
        cycle_time: 60
      - code: L1-MIX
        equipment_class: MixingVessel
        batch:
          size: 2000
          unit: l
          phases:
            - {name: Charge, duration: {kind: normal, mean: 10m, sd: 1m, min: 5m}}
            - name: Heat
              duration: 25m
              values: {Temperature: {kind: ramp, start: 20, end: 80, sd: 0.5}}
            - {name: Hold, duration: 20m, values: {Temperature: {kind: normal, mean: 80, sd: 0.3}}}
            - {name: Discharge, duration: 8m}
        process_values:
          - {name: Temperature, unit: degC, distribution: {kind: normal, mean: 20, sd: 0.2},
             eu_range: [0, 120]}
"""


def _error(text: str) -> PlantModelError:
    with pytest.raises(PlantModelError) as info:
        parse_plant_model(text, name="plant.yaml")
    return info.value


def test_a_batch_unit_loads_with_its_phases_and_its_mean_time_is_their_sum() -> None:
    model = parse_plant_model(VESSEL, name="plant.yaml")
    mixer = model.work_unit("L1-MIX")
    assert mixer.cycle_time is None and mixer.batch is not None
    assert [p.name for p in mixer.batch.phases] == ["Charge", "Heat", "Hold", "Discharge"]
    assert mixer.mean_cycle_time() == 600 + 1500 + 1200 + 480


def test_a_work_unit_takes_a_cycle_time_or_a_batch_not_both_nor_neither() -> None:
    both = VESSEL.replace("        batch:\n", "        cycle_time: 30\n        batch:\n")
    assert "exactly one of cycle_time or batch" in str(_error(both))
    neither = VESSEL.replace("        cycle_time: 60\n", "")
    message = str(_error(neither))
    assert message.startswith("plant.yaml:6:") and "lines[0].work_units[0]" in message
    assert "exactly one of cycle_time or batch" in message


def test_phase_names_must_be_names_and_unique() -> None:
    err = _error(VESSEL.replace("name: Discharge", "name: Charge"))
    assert str(err) == (
        "plant.yaml:20:22: lines[0].work_units[1].batch.phases[3].name: a second phase "
        "'Charge': phase names must be unique"
    )
    err = _error(VESSEL.replace("name: Discharge", "name: 2nd discharge"))
    assert str(err).startswith("plant.yaml:20:")
    assert "lines[0].work_units[1].batch.phases[3].name" in str(err)


def test_a_negative_phase_duration_and_a_missing_unit_are_named() -> None:
    err = _error(VESSEL.replace("duration: 8m", "duration: -480"))
    assert "plant.yaml:20:" in str(err)
    assert "batch.phases[3].duration: a duration cannot be negative" in str(err)
    err = _error(VESSEL.replace("          unit: l\n", ""))
    assert "lines[0].work_units[1].batch.unit" in str(err) and "field required" in str(err)
    err = _error(VESSEL.replace("size: 2000", "size: 0"))
    assert "plant.yaml:12:" in str(err) and "batch.size" in str(err)


def test_phase_values_name_the_units_process_values_and_stay_in_their_range() -> None:
    err = _error(VESSEL.replace("values: {Temperature: {kind: ramp", "values: {Temp: {kind: ramp"))
    assert "plant.yaml:18:" in str(err)
    assert "phases[1].values.Temp: L1-MIX has no process value 'Temp'" in str(err)
    err = _error(VESSEL.replace("end: 80, sd: 0.5", "end: 130, sd: 0.5"))
    assert "phases[1].values.Temperature" in str(err)
    assert "[18.5, 131.5] degC in phase Heat, outside its eu_range [0, 120]" in str(err)
    err = _error(VESSEL.replace("kind: ramp, start: 20", "kind: rampe, start: 20"))
    assert "phases[1].values.Temperature" in str(err) and "ramp" in str(err)


def test_a_phase_cannot_set_a_value_an_inspection_characteristic_reads() -> None:
    text = VESSEL.replace("eu_range: [0, 120]}", "eu_range: [0, 120], characteristic: temp}")
    err = _error(text)
    assert "phases[1].values.Temperature: Temperature feeds the inspection characteristic" in (
        str(err)
    )
