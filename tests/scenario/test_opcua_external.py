"""``link: opcua-external``: the twin serves OPC UA, the MES subscribes with its own
collector, the bench starts none and learns that the MES caught up through the adapter,
waiting a bounded time. Here: the bound and its message, without a server (< 1 s)."""

from __future__ import annotations

from twin.scenario.opcua_external import ExternalOpcUaLink
from twin.scenario.sut import UnitProgress


def test_an_mes_that_does_not_catch_up_is_named_with_what_was_expected() -> None:
    """The bounded wait ends with a message naming the expected counts (no server)."""
    link = ExternalOpcUaLink.__new__(ExternalOpcUaLink)
    link.catch_up_timeout = 0.3
    link.clock = lambda: 600.0
    link.published = {"BTL1-FILLER": UnitProgress(good=10, scrap=1)}
    link.caught_up = lambda until, expected: False
    link.notes = []
    link.endpoint = "opc.tcp://127.0.0.1:1"
    link._dirty = link._boundary = True

    class Quiet:
        paused = False

        def pending(self) -> int:
            return 0

    assert not link._settle_once(Quiet(), float("inf"))
    assert "did not catch up within 0.3 s" in link.last_error
    assert "BTL1-FILLER good 10 scrap 1" in link.last_error
    assert link.notes == [link.last_error]
