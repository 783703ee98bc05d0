"""mes_core.domain.genealogy: which lots go into an operation's output lot (pure)."""

from __future__ import annotations

from mes_core.domain.genealogy import ConsumedLot, Edge, ProducedLot, edges_into_output

DISPENSE, GRANULATE, PRESS = 10, 20, 30


def test_each_input_is_an_edge_on_the_operation_that_consumed_it() -> None:
    consumed = [
        ConsumedLot(DISPENSE, 1, 4.0),
        ConsumedLot(DISPENSE, 1, 6.0),
        ConsumedLot(PRESS, 2, 3.0),
    ]
    assert edges_into_output(PRESS, [DISPENSE, GRANULATE, PRESS], consumed, []) == [
        Edge(1, DISPENSE, 10.0),
        Edge(2, PRESS, 3.0),
    ]


def test_a_lot_consumed_by_two_operations_gives_an_edge_on_each() -> None:
    consumed = [ConsumedLot(DISPENSE, 1, 4.0), ConsumedLot(PRESS, 1, 1.0)]
    assert edges_into_output(PRESS, [DISPENSE, PRESS], consumed, []) == [
        Edge(1, DISPENSE, 4.0),
        Edge(1, PRESS, 1.0),
    ]


def test_an_intermediate_lot_takes_the_inputs_up_to_its_operation_only() -> None:
    consumed = [ConsumedLot(DISPENSE, 1, 5.0), ConsumedLot(PRESS, 2, 3.0)]
    assert edges_into_output(GRANULATE, [DISPENSE, GRANULATE, PRESS], consumed, []) == [
        Edge(1, DISPENSE, 5.0)
    ]


def test_the_next_lot_comes_from_the_intermediate_lot_and_the_inputs_since() -> None:
    consumed = [ConsumedLot(DISPENSE, 1, 5.0), ConsumedLot(PRESS, 2, 3.0)]
    granulate = ProducedLot(GRANULATE, 7, 4.5)
    assert edges_into_output(PRESS, [DISPENSE, GRANULATE, PRESS], consumed, [granulate]) == [
        Edge(2, PRESS, 3.0),
        Edge(7, PRESS, 4.5),
    ]
