"""The OPC UA connector: production data collection and job dispatch for the MES.

ISA-95 Part 3 production data collection (clause 6.6) and job dispatching (6.4), done the
way a plant does it: an OPC UA client per server (one per PLC, or per line of the twin).

Per server (``endpoint.EndpointLink``): connect, discover the work units (browse for
``WorkUnitType`` instances, or a YAML tag mapping), one subscription with one
``subscribe_data_change`` over all their tags and process values, whose publish results
are only appended to a list (see ``BufferedSubscription``), plus an event monitored item on
the ``Server`` object for alarms.
When the server goes away (the client's watchdog notices), reconnect with exponential
backoff, browse again and subscribe again; the new subscription delivers the current
value of every tag, and because the PackML counters are cumulative that resynchronises
the counts exactly.

Every ``flush_interval`` the buffered notifications become plant events
(``events.EventBuilder``), written to the spool (``spool.Spool``) in one transaction with
the state they were derived from, then sent to the MES's batch ingest endpoint through
``mes_core.client`` in batches, oldest first, the next already posted while the MES works
on one (``posts_in_flight``). When the MES cannot be reached, events stay
in the spool and are replayed in order when it is back; keys ``(source, sequence)`` make
replays harmless. Each batch tells the MES how many events still wait behind it (the
spool depth, ``mestwin_connector_spool_depth{collector=<name>}`` on the MES's /metrics).
Released job orders are dispatched to the machine with ``StoreAndStart``. Every fault
ridden out is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import httpx
from asyncua.ua.uaerrors import UaError

from fastpaths import fewer_collections
from mes_core.client import AsyncMesClient
from mes_core.client.errors import MesClientError, MesValidationError
from mes_core.connectors.opcua.discovery import WorkUnitBinding
from mes_core.connectors.opcua.endpoint import (
    CLIENT_APPLICATION_URI,
    BufferedSubscription,
    CollectorLink,
    ConnectorOptions,
    DispatchRefused,
    EndpointLink,
    Through,
    _Buffer,
    client_certificate,
    quiet_asyncua,
)
from mes_core.connectors.opcua.events import EventBuilder, EventJson
from mes_core.connectors.opcua.spool import Spool

log = logging.getLogger("mes_core.connectors.opcua")

COLLECTOR_GC_THRESHOLDS = (100_000, 50, 50)
"""The cyclic collector's thresholds while the connector runs (``fastpaths.GC_THRESHOLDS``
with a first threshold ten times higher). The young objects here live until the next
collect or post (notifications buffered, events in the outbox), so each young collection
scans those alive then, whatever the threshold: collecting ten times less often scans
them ten times less. At 20,000 tag changes/s the connector spent 7-11 % of its CPU in the
collector with ``GC_THRESHOLDS``, ~1 % with these (2026-12-03, load 3-8). Garbage in
cycles waits for at most 100,000 more objects (a few MB)."""


__all__ = [
    "CLIENT_APPLICATION_URI",
    "BufferedSubscription",
    "CollectorLink",
    "Connector",
    "ConnectorOptions",
    "DispatchRefused",
    "EndpointLink",
    "Through",
    "client_certificate",
    "quiet_asyncua",
]


class Connector:
    """OPC UA servers -> plant events -> spool -> MES; job orders -> StoreAndStart."""

    def __init__(
        self,
        urls: Sequence[str],
        mes: AsyncMesClient,
        spool: Spool,
        options: ConnectorOptions | None = None,
        mapping: list[WorkUnitBinding] | None = None,
        *,
        links: Sequence[CollectorLink] | None = None,
    ) -> None:
        """``links``: collect from these instead of OPC UA servers at ``urls``."""
        if not urls and not links:
            raise ValueError("at least one OPC UA server URL is needed")
        self.options = options or ConnectorOptions()
        default_name = ",".join(link.url for link in links) if links else "opcua:" + ",".join(urls)
        self.name = (self.options.name or default_name)[:100]
        self.mes = mes
        self.spool = spool
        state = spool.state()
        self.links: list[CollectorLink] = list(links or [])
        for url in urls if not links else ():
            builder = EventBuilder(f"opcua:{url}", initial_counts=self.options.initial_counts)
            builder.restore(state)
            self.links.append(EndpointLink(url, self.options, builder, mapping))
        self.outbox: deque[tuple[int, str]] = deque()
        """Spooled events not yet taken by the MES, oldest first: (spool id, JSON body).
        The bodies are posted as the spool holds them (``AsyncMesClient.ingest_json``)."""
        pending = spool.pending()
        if pending:
            self.outbox.extend(pending)
            log.info("spool: %d unsent events from the last run will be sent first", len(pending))
        self._json = EventJson()
        self._wake = asyncio.Event()
        self._collect_now = asyncio.Event()
        self.ingested: dict[str, Through] = {}
        """Per OPC UA server (URL): how far the MES has ingested what it sent (the
        watermark, ``wait_ingested``)."""
        self._marks: deque[tuple[int, str, Through]] = deque()
        """(spool id of the last event made from them, URL, how far) of what was
        collected and is not yet all taken by the MES, oldest first."""
        self._advanced: asyncio.Future[None] | None = None
        self._urgent = 0
        for link in self.links:
            buffer = getattr(link, "buffer", None)
            if isinstance(buffer, _Buffer):
                buffer.arrived = self._arrived
        self.received = 0
        self.sent = 0
        self.produced = 0
        self.mes_faults = 0
        self.dispatched: set[str] = set(state.get("dispatched", []))
        self.refused: set[str] = set()
        self._mes_down_since: float | None = None

    # --- collect -----------------------------------------------------------------------

    def collect(self) -> int:
        """Turn buffered notifications into spooled events; how many were made."""
        made = 0
        for link in self.links:
            received_through = getattr(link, "received_through", None)
            through = received_through() if received_through is not None else None
            for received, outcome in link.collect():
                self.received += received
                bodies = self._json.bodies(outcome.events)
                ids = self.spool.append(bodies, outcome.state)
                self.outbox.extend(zip(ids, bodies, strict=True))
                made += len(ids)
            if through is not None and through != self.ingested.get(link.url):
                if self.outbox:
                    if self._marks and self._marks[-1][:2] == (self.outbox[-1][0], link.url):
                        self._marks.pop()  # nothing made since: the newer mark says it
                    self._marks.append((self.outbox[-1][0], link.url, through))
                else:
                    self._ingested(link.url, through)
        if made:
            self.produced += made
            self._wake.set()
        return made

    def _arrived(self) -> None:
        if self._urgent:
            self._collect_now.set()

    async def _collect_loop(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _: self._collect_now.set())
        try:
            while not stop.is_set():
                self.collect()
                self._collect_now.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._collect_now.wait(), self.options.flush_interval_s)
        finally:
            stopping.cancel()
        self.collect()

    # --- the watermark -----------------------------------------------------------------

    def _ingested(self, url: str, through: Through) -> None:
        self.ingested[url] = through
        advanced, self._advanced = self._advanced, None
        if advanced is not None and not advanced.done():
            advanced.set_result(None)

    def _acked(self, up_to_id: int) -> None:
        """The MES took (or refused as malformed) every event up to spool id ``up_to_id``."""
        marks = self._marks
        while marks and marks[0][0] <= up_to_id:
            _, url, through = marks.popleft()
            self._ingested(url, through)

    async def _advance(self, timeout: float) -> None:
        """Wait until the watermark moves (or ``timeout``)."""
        if self._advanced is None:
            self._advanced = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._advanced), timeout)

    def endpoint(self, url: str | None = None) -> str | None:
        """The URL of the OPC UA server ``url`` names (None: the only one there is)."""
        urls = [link.url for link in self.links if isinstance(link, EndpointLink)]
        if url is None:
            return urls[0] if len(urls) == 1 else None
        return url if url in urls else None

    async def wait_ingested(
        self, url: str, subscription: int, sequence: int, timeout: float
    ) -> bool:
        """Wait until the MES has ingested every notification message of ``subscription``
        up to ``sequence`` from the server at ``url`` (what the server had sent when it
        was asked: ``twin.scenario.opcua_link``); False at ``timeout`` or when that
        subscription is gone. Meanwhile notifications are collected as they arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        link = next((x for x in self.links if x.url == url), None)
        self._urgent += 1
        try:
            self.collect()
            while True:
                through = self.ingested.get(url)
                # Only the current session's: a restarted server numbers its
                # subscriptions afresh, an older session's may bear the same id.
                current = through is not None and through.connects == getattr(
                    link, "connects", through.connects
                )
                if through is not None and current and through.subscription == subscription:
                    if through.sequence >= sequence:
                        return True
                elif through is not None and current and through.subscription > subscription:
                    return False  # a newer subscription: the server is asked again
                left = deadline - loop.time()
                if left <= 0:
                    return False
                await self._advance(left)
        finally:
            self._urgent -= 1

    async def wait_advance(self, url: str, after: str | None, timeout: float) -> None:
        """Wait until the watermark of ``url`` is other than ``after`` (its JSON
        ``latest``), or ``timeout``: a watcher that follows it without hurrying it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            through = self.ingested.get(url)
            now = through.to_json()["latest"] if through is not None else None
            left = deadline - loop.time()
            if now != after or left <= 0:
                return
            await self._advance(left)

    # --- forward -----------------------------------------------------------------------

    def _batch(self, start: int) -> list[tuple[int, str]]:
        """The outbox's events from ``start``, at most one batch of them."""
        # islice, not indexing: a deque is indexed from its nearer end, block by block.
        return list(itertools.islice(self.outbox, start, start + self.options.batch_size))

    async def _post(self, batch: list[tuple[int, str]], behind: int) -> Any:
        """Post one batch; the ``IngestResult``, or the error that stopped it.

        ``behind``: the spool depth the MES shows on /metrics, what still waits behind
        this batch."""
        try:
            return await self.mes.ingest_json([e for _, e in batch], spool=(self.name, behind))
        except (httpx.HTTPError, MesClientError, OSError) as exc:
            return exc

    def _settle(self, batch: list[tuple[int, str]], outcome: Any) -> int:
        """Apply what the MES answered to the outbox's oldest batch: acknowledge it in the
        spool, or keep it aside when refused as malformed, or note the MES is down. How
        many events the MES took (0: it did not)."""
        if isinstance(outcome, MesValidationError):
            # The MES says the batch is malformed: resending will not help. Keep it aside.
            ids = [i for i, _ in batch]
            self.spool.dead_letter(ids, str(outcome))
            for _ in batch:
                self.outbox.popleft()
            self._acked(batch[-1][0])  # kept aside, never sent again: nothing to wait for
            log.error(
                "MES refused %d events as invalid (kept in dead_letter): %s", len(ids), outcome
            )
            return 0
        if isinstance(outcome, BaseException):
            self.mes_faults += 1
            if self._mes_down_since is None:
                self._mes_down_since = time.monotonic()
                if isinstance(outcome, MesClientError) and outcome.status in (401, 403):
                    log.error(
                        "MES refused the connector's credentials (%s): check --api-key "
                        "(an integration key); %d events stay spooled",
                        outcome,
                        len(self.outbox),
                    )
                else:
                    log.warning(
                        "MES unreachable (%s: %s); spooling, %d events waiting",
                        type(outcome).__name__,
                        outcome,
                        len(self.outbox),
                    )
            return 0
        if self._mes_down_since is not None:
            log.info(
                "MES reachable again after %.1f s; replaying %d spooled events in order",
                time.monotonic() - self._mes_down_since,
                len(self.outbox),
            )
            self._mes_down_since = None
        if outcome.unknown_work_units:
            log.debug("MES does not know work units %s", outcome.unknown_work_units)
        self.spool.ack(batch[-1][0])
        for _ in batch:
            self.outbox.popleft()
        self.sent += len(batch)
        self._acked(batch[-1][0])
        return len(batch)

    async def send_once(self) -> int:
        """Send the oldest batch; how many events the MES took (0 when it was down)."""
        if not self.outbox:
            return 0
        batch = self._batch(0)
        return self._settle(batch, await self._post(batch, len(self.outbox) - len(batch)))

    async def _send_loop(self, stop: asyncio.Event) -> None:
        """Post the outbox in order, up to ``posts_in_flight`` batches at a time.

        While the MES works on one batch the next is already on its way, so the connector
        does not wait a round trip per batch. Answers are settled oldest first, so the
        spool is only ever acknowledged up to a batch all before which the MES took. When
        the oldest batch fails, the later ones in flight are awaited and then sent again
        with it, in order (one the MES took already comes back as duplicates: keys
        ``(source, sequence)``); the MES applies states by their timestamps, so batches
        overlapping in the MES do not move a work unit's state backwards.
        """
        delay = self.options.backoff_initial_s
        window: deque[tuple[list[tuple[int, str]], asyncio.Task[Any]]] = deque()
        posted = 0  # events at the head of the outbox in flight
        try:
            while True:
                while len(window) < self.options.posts_in_flight and posted < len(self.outbox):
                    batch = self._batch(posted)
                    posted += len(batch)
                    behind = len(self.outbox) - posted
                    window.append((batch, asyncio.create_task(self._post(batch, behind))))
                if not window:
                    if stop.is_set():
                        return
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), 0.5)
                    continue
                batch, task = window.popleft()
                took = self._settle(batch, await task)
                posted -= len(batch)
                if took:
                    delay = self.options.backoff_initial_s
                    continue
                # Whatever is still in flight is sent again after the failed batch.
                for _, later in window:
                    await later
                window.clear()
                posted = 0
                if stop.is_set() and self._mes_down_since is not None:
                    return  # stopping while the MES is down: the spool keeps the rest
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.backoff_max_s)
        finally:
            for _, task in window:
                task.cancel()

    # --- dispatch ----------------------------------------------------------------------

    async def _bind_to_mes(self) -> None:
        """Log which discovered work units the MES knows (by code)."""
        try:
            known = {e.code for e in await self.mes.list_equipment()}
        except (httpx.HTTPError, MesClientError, OSError):
            return
        for link in self.links:
            matched = sorted(code for code in link.bindings if code in known)
            log.info(
                "%s: %d work units bound to the MES work units of the same code (%s)",
                link.url,
                len(matched),
                ", ".join(matched[:10]) + (" ..." if len(matched) > 10 else ""),
            )
            for code, b in link.bindings.items():
                if code not in known:
                    log.warning(
                        "%s (line %s) has no MES work unit of that code: its events are "
                        "stored by the MES but not applied",
                        code,
                        b.line or "-",
                    )

    async def dispatch_once(self) -> int:
        """Send released (and dispatched, unsent) job orders to their machines."""
        try:
            jobs = [
                *await self.mes.list_job_orders(state="released"),
                *await self.mes.list_job_orders(state="dispatched"),
            ]
            if not jobs:
                return 0
            equipment = {e.code: e for e in await self.mes.list_equipment()}
        except (httpx.HTTPError, MesClientError, OSError):
            return 0
        sent = 0
        for job in jobs:
            if job.code in self.dispatched or job.code in self.refused:
                continue
            plan = self._plan(job, equipment)
            if plan is None:
                continue
            link, target, work_units = plan
            try:
                if job.state == "released":
                    await self.mes.dispatch_job_order(job.code, work_units)
                await link.store_and_start(target, job.code, job.product, job.quantity)
            except (UaError, TimeoutError, DispatchRefused) as exc:
                # Before OSError: a TimeoutError is one (the machine did not answer).
                self.refused.add(job.code)
                log.warning("job order %s: %s.StoreAndStart refused: %s", job.code, target, exc)
                continue
            except (httpx.HTTPError, MesClientError, OSError) as exc:
                log.warning("dispatch of job order %s: MES said %s", job.code, exc)
                continue
            self.dispatched.add(job.code)
            self.spool.append([], {"dispatched": sorted(self.dispatched)})
            log.info(
                "job order %s (%s x %g) dispatched to %s",
                job.code,
                job.product,
                job.quantity,
                target,
            )
            sent += 1
        return sent

    def _plan(
        self, job: Any, equipment: dict[str, Any]
    ) -> tuple[CollectorLink, str, dict[int, str]] | None:
        """Which work unit runs each operation: the planned ones, else a line that fits."""
        ops = sorted(job.operations, key=lambda o: o.sequence)
        bound = {
            code: link for link in self.links if link.connected.is_set() for code in link.bindings
        }
        planned = {o.sequence: o.planned_work_unit for o in ops if o.planned_work_unit}
        if len(planned) == len(ops) and ops:
            first = planned[ops[0].sequence]
            return (bound[first], first, {}) if first in bound else None
        lines: dict[str, list[str]] = {}
        for code in bound:
            eq = equipment.get(code)
            if eq is not None:
                lines.setdefault(eq.parent or "", []).append(code)
        for codes in lines.values():
            assignment: dict[int, str] = {}
            cursor = 0
            for op in ops:
                for i in range(cursor, len(codes)):
                    if equipment[codes[i]].equipment_class == op.equipment_class:
                        assignment[op.sequence] = codes[i]
                        cursor = i + 1
                        break
                else:
                    break
            if ops and len(assignment) == len(ops):
                first = assignment[ops[0].sequence]
                return bound[first], first, assignment
        return None

    async def _dispatch_loop(self, stop: asyncio.Event) -> None:
        interval = self.options.dispatch_interval_s
        bound_logged = False
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval or 1.0)
            if stop.is_set():
                return
            if not bound_logged and all(link.connected.is_set() for link in self.links):
                await self._bind_to_mes()
                bound_logged = True
            if interval:
                await self.dispatch_once()

    # --- running -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then flush what was collected (or keep it spooled)."""
        # Every notification decoded and every event built allocates a few containers,
        # none in a cycle; with Python's thresholds the collector scanned the outbox's
        # thousands of events often: ~40 % of building events (20,000 notifications).
        with fewer_collections(COLLECTOR_GC_THRESHOLDS):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        inner = asyncio.Event()
        tasks = [
            asyncio.create_task(link.run(inner), name=f"opcua {link.url}") for link in self.links
        ]
        collect = asyncio.create_task(self._collect_loop(inner), name="collect")
        send = asyncio.create_task(self._send_loop(inner), name="send")
        dispatch = asyncio.create_task(self._dispatch_loop(inner), name="dispatch")
        await stop.wait()
        inner.set()
        await asyncio.gather(*tasks, collect, dispatch)
        await send
        log.info(
            "connector stopped: %d events made, %d sent, %d in the spool",
            self.produced,
            self.sent,
            len(self.outbox),
        )

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring (``mestwin connect --stats FILE``), with each link's
        own (``link_stats()``, where it has some: a Sparkplug host's edge node sessions)."""
        extra: dict[str, Any] = {}
        for link in self.links:
            link_stats = getattr(link, "link_stats", None)
            if link_stats is not None:
                extra.update(link_stats())
        return extra | {
            "received": self.received,
            "produced": self.produced,
            "sent": self.sent,
            "spooled": len(self.outbox),
            "connected": all(link.connected.is_set() for link in self.links),
            "opcua_faults": sum(link.faults for link in self.links),
            # Connections made again after one was lost (failed attempts not counted).
            "reconnects": sum(max(link.connects - 1, 0) for link in self.links),
            "mes_faults": self.mes_faults,
            "dead_letters": self.spool.dead_letters(),
            "ingested": {url: through.to_json() for url, through in self.ingested.items()},
        }

    async def wait_connected(self, timeout: float = 30.0) -> None:
        """Wait until every server is connected and subscribed."""
        await asyncio.wait_for(
            asyncio.gather(*(link.connected.wait() for link in self.links)), timeout
        )
