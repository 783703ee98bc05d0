"""``mestwin connect --status HOST:PORT``: the connector's counters over local HTTP, and
``POST /flush``, which answers once everything received so far is sent to the MES."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import httpx

from mes_core.client.local import free_port
from mes_core.connectors.opcua.cli import StatusServer, flush


class FakeConnector:
    """What the status endpoint uses of ``Connector``: collect, outbox, stats."""

    def __init__(self) -> None:
        self.buffered = 0
        self.outbox: deque[int] = deque()
        self.produced = self.sent = 0
        self.mes_up = True

    def collect(self) -> int:
        made, self.buffered = self.buffered, 0
        self.outbox.extend(range(made))
        self.produced += made
        return made

    async def send_loop(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            if self.mes_up and self.outbox:
                self.sent += len(self.outbox)
                self.outbox.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "produced": self.produced,
            "sent": self.sent,
            "spooled": len(self.outbox),
            "connected": True,
        }


def test_flush_collects_what_was_received_and_answers_once_it_is_sent() -> None:
    async def main() -> None:
        connector = FakeConnector()
        sender = asyncio.create_task(connector.send_loop())
        connector.buffered = 7  # received, not collected yet (the collect loop is slower)
        s = await flush(connector, timeout=5)
        assert s == {"produced": 7, "sent": 7, "spooled": 0, "connected": True}
        connector.mes_up = False  # the MES is away: flush gives up after its timeout
        connector.buffered = 3
        s = await flush(connector, timeout=0.1)
        assert s["spooled"] == 3 and s["sent"] == 7
        sender.cancel()

    asyncio.run(main())


def test_status_endpoint_over_http() -> None:
    port = free_port()

    async def main() -> None:
        connector = FakeConnector()
        sender = asyncio.create_task(connector.send_loop())
        server = StatusServer(("127.0.0.1", port), connector, asyncio.get_running_loop())
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                r = await http.get("/status")
                assert r.status_code == 200 and r.json()["produced"] == 0
                connector.buffered = 5
                r = await http.post("/flush", params={"timeout": "5"})
                assert r.json() == {"produced": 5, "sent": 5, "spooled": 0, "connected": True}
                assert (await http.get("/nothing")).status_code == 404
                assert (await http.post("/flush", params={"timeout": "x"})).status_code == 400
        finally:
            server.close()
            sender.cancel()

    asyncio.run(main())
