"""Genealogy reconciled where the material was consumed (issue 13): an edge booked on
another operation than the one whose work unit drew the lot is named. Plain data, < 1 s."""

from __future__ import annotations

from twin.scenario.reconcile import Records, reconcile


def test_an_edge_booked_on_another_operation_than_the_consuming_one_is_named() -> None:
    edge = ("API-LOT-1", "BATCH-1-OUT")
    truth = Records(genealogy={edge}, genealogy_at={(*edge, "TAB1-DISP")})
    right = Records(genealogy={edge}, genealogy_at={(*edge, "TAB1-DISP")})
    assert reconcile(truth, right).exact
    last_op = Records(genealogy={edge}, genealogy_at={(*edge, "TAB1-PACK")})
    assert reconcile(truth, last_op).mismatches == [
        "genealogy API-LOT-1 -> BATCH-1-OUT: consumed at TAB1-DISP: plant 1, MES has no record",
        "genealogy API-LOT-1 -> BATCH-1-OUT: consumed at TAB1-PACK: MES recorded 1 but the "
        "plant has no such record",
    ]


def test_a_side_that_cannot_tell_where_leaves_the_check_out() -> None:
    edge = ("L1", "OUT")
    truth = Records(genealogy={edge}, genealogy_at={(*edge, "WU1")})
    rows = reconcile(truth, Records(genealogy={edge})).rows
    assert [r.quantity for r in rows] == ["edge"]
