"""The terminals' actions without a browser (issue 15), against the dashboards' test MES:
the MES's answers come back as it gave them (rule, status, message), never rewritten.
Only refusals and a hold that is lifted again, so the shared plant is left as it was."""

from __future__ import annotations

from typing import Any

import plantdata

from dashboards.acting import Acting
from mes_core.client import MesClient


def test_terminal_actions_carry_the_mes_answer_and_what_they_touched(mes: Any) -> None:
    """``mes``: the dashboards' test MES (conftest.Mes, not imported: a module named
    conftest is ambiguous when several test folders run together)."""
    with MesClient(mes.url).login("alice", "alice") as alice:
        terminal = Acting(alice)
        queue = terminal.queue("BTL1-FILLER")
        assert any(r.job_order == "JO-RUN" and r.state == "running" for r in queue), queue
        wrong = terminal.consume("JO-RUN", 1, "CAP-0001", 1)
        assert not wrong.accepted and wrong.status == 409 and wrong.rule == "MATERIAL_NOT_ON_BOM"
        assert wrong.objects == ["job_order:JO-RUN", "lot:CAP-0001"] and "CAP-0001" in wrong.message
        record = wrong.record("alice", ("operator",))
        assert record["person"] == "alice" and record["rule"] == "MATERIAL_NOT_ON_BOM"
        hold = terminal.hold_order("JO-RUN", "looks wrong")
        assert not hold.accepted and hold.status == 403 and hold.rule == "FORBIDDEN"
        outcome, signed = terminal.dispose("NC-999999", "scrap", "approval", "a reason", "alice")
        assert not outcome.accepted and signed is None and outcome.status in (403, 404)
        clocked = terminal.clock("in")
        assert clocked.accepted and clocked.action == "clock_in", clocked
        again = terminal.clock("in")
        assert not again.accepted and again.status == 409, again  # already clocked in
        assert terminal.clock("out").accepted
    with MesClient(mes.url).login("quinn", "quinn") as quinn:
        qa = Acting(quinn)
        held = qa.hold_lot("CAP-0001", "suspect caps")
        assert held.accepted and "hold" in held.message, held
        released = qa.hold_lot("CAP-0001", "checked: fine", release=True)
        assert released.accepted, released
    with MesClient(mes.url).login("admin", plantdata.ADMIN_PASSWORD) as admin:
        assert admin.get_lot("CAP-0001").status == "available"
