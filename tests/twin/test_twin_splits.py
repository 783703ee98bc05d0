"""Splits by product (issue 17, routing by outcome): a station sends each unit by the
buffer of its product (or the one naming none) to its branch, the branches merge again
at a station that takes the unit waiting longest; and the flow rules a plant model file
must keep (file:line errors)."""

from __future__ import annotations

import pytest

from plant_models.loader import PlantModelError, parse_plant_model
from twin.engine import Engine

SPLIT_LINE = """\
plant: {code: PACKING}
lines:
  - code: L1
    work_units:
      - {code: L1-FILL, equipment_class: Filler, cycle_time: {kind: exponential, mean: 1.0}}
      - {code: L1-SHRINK, equipment_class: ShrinkWrapper, cycle_time: 1.4}
      - {code: L1-CASE, equipment_class: CasePacker, cycle_time: 1.6}
      - {code: L1-PAL, equipment_class: Palletiser, cycle_time: 0.5}
    buffers:
      - {code: B-SHRINK, upstream: L1-FILL, downstream: L1-SHRINK, capacity: 4, products: [MULTI]}
      - {code: B-CASE, upstream: L1-FILL, downstream: L1-CASE, capacity: 4}
      - {code: B-SP, upstream: L1-SHRINK, downstream: L1-PAL, capacity: 4}
      - {code: B-CP, upstream: L1-CASE, downstream: L1-PAL, capacity: 4, transfer_time: 5.0}
materials: [{id: FG-M}, {id: FG-C}]
products:
  - id: MULTI
    material: FG-M
    line: L1
    segments:
      - {id: FILL, equipment_class: Filler, standard_run_time: 0.9}
      - {id: SHRINK, equipment_class: ShrinkWrapper, standard_run_time: 1.4}
      - {id: PAL, equipment_class: Palletiser, standard_run_time: 0.5}
  - id: CASED
    material: FG-C
    line: L1
    segments:
      - {id: FILL, equipment_class: Filler, standard_run_time: 0.9}
      - {id: CASE, equipment_class: CasePacker, standard_run_time: 1.6}
      - {id: PAL, equipment_class: Palletiser, standard_run_time: 0.5}
order_stream:
  job_orders:
    - {id: J1, product: MULTI, quantity: 300, due: 1d}
    - {id: J2, product: CASED, quantity: 200, due: 1d}
    - {id: J3, product: MULTI, quantity: 100, due: 1d}
"""


def test_each_product_takes_its_branch_and_the_branches_merge() -> None:
    engine = Engine(parse_plant_model(SPLIT_LINE), seed=5)
    engine.run_until(3_000.0)
    counts = {code: wu.processed for code, wu in engine.work_units.items()}
    assert counts == {"L1-FILL": 600, "L1-SHRINK": 400, "L1-CASE": 200, "L1-PAL": 600}
    assert all(job.done for job in engine.jobs.values())
    # every unit reached the merge by its branch's buffer (the conveyor included)
    buffers = {b.code: b for b in engine.lines[0].buffers}
    assert (buffers["B-SP"].exited, buffers["B-CP"].exited) == (400, 200)
    assert engine.lines[0].wip == 0


def _errors(text: str) -> list[str]:
    with pytest.raises(PlantModelError) as info:
        parse_plant_model(text, name="split.yaml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "products: [MULTI]}",
            "products: [MULTY]}",
            "split.yaml:10:92: lines[0].buffers[0].products[0]: no product 'MULTY'",
        ),
        (
            "- {code: B-CASE, upstream: L1-FILL, downstream: L1-CASE, capacity: 4}",
            "- {code: B-CASE, upstream: L1-FILL, downstream: L1-CASE, capacity: 4, "
            "products: [OTHER]}",
            "split.yaml:11:88: lines[0].buffers[1].products[0]: no product 'OTHER'",
        ),
        (
            "{code: B-SP, upstream: L1-SHRINK, downstream: L1-PAL",
            "{code: B-SP, upstream: L1-SHRINK, downstream: L1-FILL",
            "split.yaml:12:55: lines[0].buffers[2].downstream: buffer B-SP goes back from "
            "L1-SHRINK to L1-FILL: flow runs forward in the line's list (a cycle otherwise); "
            "rework goes back by rework:",
        ),
    ],
    ids=["unknown-product", "unknown-product-on-the-other-way", "cycle"],
)
def test_a_broken_split_line_is_refused_with_the_file_line_of_the_problem(
    old: str, new: str, expected: str
) -> None:
    assert _errors(SPLIT_LINE.replace(old, new))[0] == expected


def test_a_product_sent_two_ways_at_a_split_is_named() -> None:
    text = SPLIT_LINE.replace(
        "{code: B-CASE, upstream: L1-FILL, downstream: L1-CASE, capacity: 4}",
        "{code: B-CASE, upstream: L1-FILL, downstream: L1-CASE, capacity: 4, products: [MULTI]}",
    )
    errors = _errors(text)
    assert errors[0] == (
        "split.yaml:11:88: lines[0].buffers[1].products[0]: L1-FILL already sends MULTI by B-SHRINK"
    )


def test_a_segment_on_a_branch_its_product_does_not_take_is_named() -> None:
    """Both branches of one class: the segment maps to the first, which CASED skips."""
    text = SPLIT_LINE.replace(
        "equipment_class: CasePacker, cycle_time: 1.6",
        "equipment_class: ShrinkWrapper, cycle_time: 1.6",
    ).replace(
        "{id: CASE, equipment_class: CasePacker, standard_run_time: 1.6",
        "{id: CASE, equipment_class: ShrinkWrapper, standard_run_time: 1.4",
    )
    assert _errors(text) == [
        "split.yaml:28:37: products[1].segments[1].equipment_class: segment CASE would run "
        "on L1-SHRINK, which units of CASED do not pass: segments run on the first station "
        "of their class in the line's list; give each branch's machines classes of their own"
    ]


def test_a_product_that_no_way_out_of_a_split_takes_is_named() -> None:
    """Both ways name their products: a third product reaching the split has none."""
    text = SPLIT_LINE.replace(
        "{code: B-CASE, upstream: L1-FILL, downstream: L1-CASE, capacity: 4}",
        "{code: B-CASE, upstream: L1-FILL, downstream: L1-CASE, capacity: 4, products: [CASED]}",
    ).replace(
        "order_stream:",
        "  - id: LOOSE\n    material: FG-C\n    line: L1\n    segments:\n"
        "      - {id: FILL, equipment_class: Filler, standard_run_time: 0.9}\n"
        "order_stream:",
    )
    assert _errors(text) == [
        "split.yaml:32:11: products[2].line: units of LOOSE stop at L1-FILL: no buffer out "
        "of it takes LOOSE (name it in one's products, or leave one without)"
    ]
