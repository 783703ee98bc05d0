"""Assembly (merge) stations: feeder branches of work units, a kit of parts taken from
several input buffers at once, against an exact continuous-time Markov chain solved here;
and the flow rules a plant model file must keep (file:line errors)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from test_twin_validation import CONFIDENCE, _decides
from twin_test_plants import exponential, plant, work_unit

from plant_models.loader import PlantModelError, parse_plant_model
from twin.engine import Engine
from twin.replicate import replicate

State = tuple[int, int, int]


def _assembly_throughput(
    lam1: float, lam2: float, mu: float, cap1: int, cap2: int, n2: int
) -> float:
    """Exact throughput of two saturated exponential feeders (lam1, lam2) into buffers of
    ``cap1``, ``cap2`` feeding an exponential assembly (mu) that takes 1 and ``n2`` parts.

    State (x1, x2, m): x_i parts of feeder i waiting, the buffer's plus the one a blocked
    feeder holds (x_i = cap_i + 1: full and blocked; blocking after service); m = 1 while
    the assembly works. The assembly starts at once when a kit is there, so states with
    m = 0 and a complete kit are left instantly (folded into the transitions). Solve
    pi Q = 0 on the reachable states; throughput = mu P(m = 1)."""

    def settle(x1: int, x2: int, m: int) -> State:
        if m == 0 and x1 >= 1 and x2 >= n2:
            return (x1 - 1, x2 - n2, 1)
        return (x1, x2, m)

    def moves(s: State) -> list[tuple[State, float]]:
        x1, x2, m = s
        out = []
        if x1 <= cap1:  # feeder 1 is working (not blocked)
            out.append((settle(x1 + 1, x2, m), lam1))
        if x2 <= cap2:
            out.append((settle(x1, x2 + 1, m), lam2))
        if m == 1:
            out.append((settle(x1, x2, 0), mu))
        return out

    index: dict[State, int] = {}
    todo = deque([(0, 0, 0)])
    while todo:
        s = todo.popleft()
        if s in index:
            continue
        index[s] = len(index)
        todo.extend(t for t, _ in moves(s) if t not in index)
    q = np.zeros((len(index), len(index)))
    for s, i in index.items():
        for t, rate in moves(s):
            q[i, index[t]] += rate
            q[i, i] -= rate
    # pi Q = 0 with sum(pi) = 1: replace one balance equation by the normalisation
    a = np.vstack([q.T[:-1], np.ones(len(index))])
    b = np.zeros(len(index))
    b[-1] = 1.0
    pi = np.linalg.solve(a, b)
    return mu * sum(p for s, p in zip(index, pi, strict=True) if s[2] == 1)


def _kit_line(lam1: float, lam2: float, mu: float, cap1: int, cap2: int, n2: int) -> object:
    return plant(
        [
            work_unit("L1-A", exponential(1 / lam1)),
            work_unit("L1-B", exponential(1 / lam2)),
            work_unit(
                "L1-M",
                exponential(1 / mu),
                assembly={"inputs": [{"buffer": "B1"}, {"buffer": "B2", "quantity": n2}]},
            ),
        ],
        [("L1-A", "L1-M", cap1), ("L1-B", "L1-M", cap2)],
    )


def test_ctmc_solver_gives_the_two_machine_blocking_formula_without_a_second_feeder() -> None:
    """The chain itself, checked against a known result: with feeder 2 far faster it is
    two machines with a buffer, TH = mu1 (1 - r^N) / (1 - r^(N+1)), N = C + 2."""
    lam1, mu, cap = 1.0, 1.25, 3
    r, n = lam1 / mu, cap + 2
    exact = lam1 * (1 - r**n) / (1 - r ** (n + 1))
    assert _assembly_throughput(lam1, 1e6, mu, cap, 2, 1) == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize(
    ("lam1", "lam2", "mu", "cap1", "cap2", "n2"),
    [(1.0, 1.2, 1.1, 1, 2, 1), (1.0, 2.2, 1.2, 0, 3, 2)],
    ids=["one-each", "two-of-b-direct-hand-off-of-a"],
)
def test_assembly_throughput_matches_the_exact_markov_chain(
    lam1: float, lam2: float, mu: float, cap1: int, cap2: int, n2: int
) -> None:
    """Two exponential feeders into finite buffers feeding an exponential assembly that
    takes one part of A and ``n2`` of B when all are there: the engine's throughput lies in
    the 99 % interval of seeded replications around the chain's exact value."""
    exact = _assembly_throughput(lam1, lam2, mu, cap1, cap2, n2)
    model = _kit_line(lam1, lam2, mu, cap1, cap2, n2)
    result = replicate(model, 8, 12_000.0, seed=17, warmup=300.0, confidence=CONFIDENCE)  # type: ignore[arg-type]
    _decides(result["line.L1.throughput_per_hour"], exact * 3600.0, 0.02)
    per_kit = (
        result["wu.L1-B.throughput_per_hour"].mean / result["wu.L1-M.throughput_per_hour"].mean
    )
    assert per_kit == pytest.approx(n2, rel=0.01)


def test_a_job_order_on_a_kit_line_completes_with_scrapped_parts_remade_by_their_feeder() -> None:
    """A job order of 40 kits (1 A + 2 B each) on a line whose B feeder scraps 20 %: the
    B branch releases 80 parts plus one per scrapped part, the assembly makes 40 kits, and
    the job order completes with every part accounted for."""
    model = plant(
        [
            work_unit("L1-A", exponential(1.0)),
            work_unit("L1-B", exponential(0.5), scrap_probability=0.2),
            work_unit(
                "L1-M",
                exponential(1.0),
                assembly={"inputs": [{"buffer": "B1"}, {"buffer": "B2", "quantity": 2}]},
            ),
            work_unit("L1-PACK", 0.5),
        ],
        [("L1-A", "L1-M", 2), ("L1-B", "L1-M", 4), ("L1-M", "L1-PACK", 3)],
        continuous=False,
        order_stream={"job_orders": [{"id": "JO-1", "product": "P", "quantity": 40, "due": 1e5}]},
    )
    engine = Engine(model, seed=3)
    engine.run_until(5_000.0)
    job = engine.jobs["JO-1"]
    a, b, m = (engine.work_units[c] for c in ("L1-A", "L1-B", "L1-M"))
    assert job.done and job.made == 40
    assert (a.processed, m.processed) == (40, 40)
    assert b.processed - b.defective == 80 and b.defective > 5
    assert job.released == 40 + b.processed  # every part released, the scrapped remade
    assert engine.lines[0].wip == 0 and job.outstanding == 0


KIT_LINE = """\
plant: {code: KIT}
lines:
  - code: L1
    work_units:
      - {code: L1-A, equipment_class: Press, cycle_time: 1.0}
      - {code: L1-B, equipment_class: Moulder, cycle_time: 1.0}
      - code: L1-M
        equipment_class: Assembler
        cycle_time: 1.0
        assembly:
          inputs:
            - {buffer: BA}
            - {buffer: BB, quantity: 2}
      - {code: L1-T, equipment_class: Tester, cycle_time: 1.0}
    buffers:
      - {code: BA, upstream: L1-A, downstream: L1-M, capacity: 4}
      - {code: BB, upstream: L1-B, downstream: L1-M, capacity: 4}
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(PlantModelError) as info:
        parse_plant_model(text, name="kit.yaml")
    return [str(p) for p in info.value.problems]


def test_a_kit_line_file_is_valid() -> None:
    line = parse_plant_model(KIT_LINE).lines[0]
    assert [i.quantity for i in line.work_units[2].assembly.inputs] == [1, 2]  # type: ignore[union-attr]


GOES_NOWHERE = (
    "kit.yaml:6:9: lines[0].work_units[1]: the units of L1-B go nowhere: the next station "
    "L1-M is an assembly it does not feed; give a buffer from L1-B to L1-M and name it in "
    "L1-M's assembly.inputs"
)


@pytest.mark.parametrize(
    ("old", "new", "first"),
    [
        (
            "{buffer: BB, quantity: 2}",
            "{buffer: BX, quantity: 2}",
            "kit.yaml:13:24: lines[0].work_units[2].assembly.inputs[1].buffer: no buffer 'BX' "
            "on line L1",
        ),
        (
            "{code: BB, upstream: L1-B, downstream: L1-M",
            "{code: BB, upstream: L1-B, downstream: L1-T",
            "kit.yaml:13:24: lines[0].work_units[2].assembly.inputs[1].buffer: buffer BB leads "
            "to L1-T, not to this assembly (L1-M): a feeder's buffer names the assembly as its "
            "downstream",
        ),
        (
            "{code: BB, upstream: L1-B, downstream: L1-M",
            "{code: BB, upstream: L1-T, downstream: L1-M",
            "kit.yaml:13:24: lines[0].work_units[2].assembly.inputs[1].buffer: buffer BB comes "
            "from L1-T, which is not before the assembly L1-M in the line's list: the assembly "
            "would feed its own feeder (a cycle); list a feeder branch before its assembly",
        ),
    ],
    ids=["unknown-buffer", "feeder-leads-elsewhere", "cycle"],
)
def test_a_broken_kit_line_is_refused_with_the_file_line_of_each_problem(
    old: str, new: str, first: str
) -> None:
    errors = _errors(KIT_LINE.replace(old, new))
    assert errors[:2] == [first, GOES_NOWHERE]


def test_a_buffer_into_an_assembly_that_it_does_not_list_is_named() -> None:
    text = KIT_LINE.replace(
        "            - {buffer: BB, quantity: 2}\n", "            - {buffer: BA}\n"
    )
    assert _errors(text) == [
        "kit.yaml:13:24: lines[0].work_units[2].assembly.inputs[1].buffer: station L1-A "
        "already feeds L1-M through BA: a feeder branch ends at one assembly input",
        GOES_NOWHERE,
        "kit.yaml:17:48: lines[0].buffers[1].downstream: expected the station after L1-B "
        "(none: see its station's error), got 'L1-M'; an assembly's feeder: name BB in its "
        "assembly.inputs",
    ]


def test_rework_cannot_cross_from_one_feeder_branch_to_another() -> None:
    text = KIT_LINE.replace(
        "{code: L1-B, equipment_class: Moulder, cycle_time: 1.0}",
        "{code: L1-B, equipment_class: Moulder, cycle_time: 1.0, "
        "rework: {to: L1-A, probability: 0.1}}",
    )
    assert _errors(text) == [
        "kit.yaml:6:78: lines[0].work_units[1].rework.to: L1-A is not on L1-B's branch of "
        "the line (it begins at L1-B): rework goes back along its own branch, never across "
        "an assembly, a split or a merge"
    ]
