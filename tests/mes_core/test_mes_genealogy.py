"""Genealogy as an auditor traces a recall (ISA-95 Part 2 material lot relationships), over
the API on SQLite and PostgreSQL: edges on the consuming operation, intermediate lots, and
in-process and held job orders in the traces."""

from __future__ import annotations

from mes_core_factories import Plant

from mes_core.schemas.execution import OutputLot


def _edges(pl: Plant, lot: str) -> set[tuple[str, str, int, float]]:
    trace = pl.admin.genealogy(pl.c(lot), "backward")
    return {(e.parent, e.child, e.operation, e.quantity) for e in trace.edges}


def test_genealogy_edge_is_booked_on_the_consuming_operation(pl: Plant) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    op.consume_lot(jo, 1, pl.c("B1"), 10)
    op.report_quantities(jo, 1, good=10)
    op.complete_operation(jo, 1)
    op.start_operation(jo, 2)
    op.consume_lot(jo, 2, pl.c("C1"), 4)
    op.consume_lot(jo, 2, pl.c("C1"), 6)
    op.report_quantities(jo, 2, good=10)
    op.complete_operation(jo, 2, output_lot=OutputLot(code=pl.c("OUT")))
    assert _edges(pl, "OUT") == {
        (pl.c("B1"), pl.c("OUT"), 1, 10.0),
        (pl.c("C1"), pl.c("OUT"), 2, 10.0),
    }


def test_an_intermediate_lot_comes_from_its_operations_inputs_and_goes_into_the_next(
    pl: Plant,
) -> None:
    op = pl.person("op")
    jo = pl.job_order()
    op.start_operation(jo, 1)
    op.consume_lot(jo, 1, pl.c("B1"), 10)
    op.report_quantities(jo, 1, good=10)
    op.complete_operation(jo, 1, output_lot=OutputLot(code=pl.c("INT")))
    op.start_operation(jo, 2)
    op.consume_lot(jo, 2, pl.c("C1"), 10)
    op.report_quantities(jo, 2, good=10)
    op.complete_operation(jo, 2, output_lot=OutputLot(code=pl.c("OUT")))
    assert _edges(pl, "INT") == {(pl.c("B1"), pl.c("INT"), 1, 10.0)}
    back = pl.admin.genealogy(pl.c("OUT"), "backward")
    assert {(e.parent, e.child, e.operation) for e in back.edges} == {
        (pl.c("INT"), pl.c("OUT"), 2),
        (pl.c("C1"), pl.c("OUT"), 2),
        (pl.c("B1"), pl.c("INT"), 1),
    }
    assert {n.code: n.depth for n in back.lots} == {
        pl.c("OUT"): 0,
        pl.c("INT"): 1,
        pl.c("C1"): 1,
        pl.c("B1"): 2,
    }
    assert [(u.lot, u.operation, u.use) for u in back.job_orders] == [
        (pl.c("INT"), 1, "produced"),
        (pl.c("OUT"), 2, "produced"),
    ]


def test_forward_and_backward_traces_name_in_process_and_held_job_orders(pl: Plant) -> None:
    op = pl.person("op")
    qa = pl.person("qa")
    running = pl.job_order("RUN")
    held = pl.job_order("HELD")
    op.start_operation(running, 1)
    op.consume_lot(running, 1, pl.c("B1"), 3)
    op.start_operation(held, 1)
    op.consume_lot(held, 1, pl.c("B1"), 5)
    op.report_quantities(held, 1, good=5)
    op.complete_operation(held, 1, output_lot=OutputLot(code=pl.c("INT")))
    qa.hold_job_order(held, "suspect seal")
    # Neither order has made a finished lot, yet a recall of B1 finds both.
    fwd = pl.admin.genealogy(pl.c("B1"), "forward")
    assert [
        (u.job_order, u.job_order_state, u.operation, u.use, u.quantity)
        for u in fwd.job_orders
        if u.lot == pl.c("B1")
    ] == [
        (held, "held", 1, "consumed", 5.0),
        (running, "running", 1, "consumed", 3.0),
    ]
    back = pl.admin.genealogy(pl.c("INT"), "backward")
    assert [(u.job_order, u.job_order_state, u.use) for u in back.job_orders] == [
        (held, "held", "produced")
    ]
    assert {e.parent for e in back.edges} == {pl.c("B1")}
