"""One OPC UA server as the connector sees it (``EndpointLink``): connect (optionally
signed and encrypted, ``client_certificate``), discover the work units, one subscription
whose publish results are only appended to a buffer (``BufferedSubscription``), reconnect
with backoff, ``StoreAndStart`` for job dispatch; and the connector's options
(``ConnectorOptions``) and watermark (``Through``). ``connector.Connector`` turns what the
links collect into plant events, spools them and sends them to the MES.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from asyncua import Client, ua
from asyncua.common.subscription import Subscription
from asyncua.ua.uaerrors import UaError

from mes_core.connectors.opcua.discovery import WorkUnitBinding, discover
from mes_core.connectors.opcua.events import BatchOutcome, EventBuilder, Notification
from mes_core.connectors.opcua.mapping import ALARM_EVENT_TYPE, NAMESPACE_URI
from mes_core.connectors.opcua.publish import data_changes, lean_publish
from mes_core.schemas.plant_events import MAX_BATCH_EVENTS

log = logging.getLogger("mes_core.connectors.opcua")


def quiet_asyncua() -> None:
    """asyncua logs whole publish results at INFO: keep it at WARNING (PERFORMANCE-NOTES)."""
    for name in ("asyncua", "asyncua.client", "asyncua.common", "asyncua.uaprotocol"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # httpx logs every request at INFO: one line per batch is noise, faults are logged here.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class ConnectorOptions:
    """Tuning and policy of a connector (defaults suit the twin on one machine)."""

    publishing_interval_ms: float = 100.0
    flush_interval_s: float = 0.1
    batch_size: int = 2000
    posts_in_flight: int = 2
    """Batches posted to the MES before the oldest is answered (1: one round trip each)."""
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    dispatch_interval_s: float = 2.0
    """How often released job orders are looked for (0: never dispatch)."""
    initial_counts: str = "count"
    """First sight of a counter: ``count`` what it holds (the twin starts at 0) or ``skip``."""
    username: str | None = None
    password: str | None = None
    security: str = "none"
    """``none`` or ``sign-encrypt`` (Basic256Sha256 SignAndEncrypt)."""
    pki_dir: Path = Path("mestwin-data/pki-connector")
    """Where the connector's self-signed client certificate is kept (sign-encrypt)."""
    name: str = ""
    """The collector's name on the MES's ``/metrics`` (``mestwin_connector_spool_depth``);
    empty: ``opcua:`` and its server URLs."""

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_EVENTS}, got {self.batch_size}")
        if self.posts_in_flight < 1:
            raise ValueError(f"posts_in_flight must be >= 1, got {self.posts_in_flight}")
        if self.security not in ("none", "sign-encrypt"):
            raise ValueError(f"security: expected none or sign-encrypt, got {self.security!r}")


CLIENT_APPLICATION_URI = "urn:mestwin:connector"


async def client_certificate(pki_dir: Path) -> tuple[Path, Path]:
    """The connector's application certificate and key, self-signed on first use."""
    import socket

    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    pki_dir.mkdir(parents=True, exist_ok=True)
    cert, key = pki_dir / "connector-cert.der", pki_dir / "connector-key.pem"
    await setup_self_signed_certificate(
        key,
        cert,
        CLIENT_APPLICATION_URI,
        socket.gethostname(),
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"organizationName": "mestwin", "commonName": "mestwin OPC UA connector"},
    )
    return cert, key


#: Seconds between the client's probes of a quiet connection, and how long a probe may
#: take (asyncua waits min(session timeout / 2, this)). A twin flooding its own server at
#: ``--speed max`` on a loaded machine left a 5 s probe unanswered (seen once in a 100 min
#: reference-plant run at load ~10): the connector took the server for lost, resubscribed,
#: and the state changes of those seconds never became events. A closed socket is noticed
#: at once anyway; only a silent (half-open) connection waits this long to be noticed.
WATCHDOG_S = 20.0


class DispatchRefused(Exception):
    """The machine refused a job order (or a Stop, a Reset) the connector sent it."""


@dataclass(frozen=True)
class Through:
    """How far one OPC UA session's notifications reached: every notification message of
    subscription ``subscription`` (of the link's ``connects``-th session) up to sequence
    number ``sequence``, the latest source time among them ``latest`` (None: none had
    one). As the connector's watermark: all of that is ingested by the MES."""

    connects: int
    subscription: int
    sequence: int
    latest: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "connects": self.connects,
            "subscription": self.subscription,
            "sequence": self.sequence,
            "latest": self.latest.isoformat() if self.latest is not None else None,
        }


class _Buffer:
    """What the subscription delivered since the connector last took it, and how far."""

    def __init__(self) -> None:
        self.items: list[Notification] = []
        self.alarms: list[Any] = []
        self.through: Through | None = None
        self.arrived: Callable[[], None] | None = None
        """Called after a notification message with data went in (the connector collects
        at once while someone waits for the watermark)."""


class BufferedSubscription(Subscription):
    """A subscription whose publish results go straight into a ``_Buffer``: an append, no I/O.

    asyncua's own delivery turns every notification into a ``DataChangeEvent`` (with a
    ``DataChangeNotif``) and passes it through an ``asyncio.Queue`` to a consumer task, or
    spawns a task per notification in handler mode (~37 us each on this machine). Here
    ``publish_callback`` (the hook asyncua's publish loop calls with each decoded
    ``PublishResult``) appends ``(NodeId, value, source time)`` to the buffer in one pass;
    the events are built in batches by ``Connector.collect``, which takes the whole buffer
    every ``flush_interval``, so the buffer holds at most what arrived since (the backlog,
    if any, stays with the server, which publishes only as fast as the connector asks).
    """

    def __init__(
        self,
        session: Any,
        params: ua.CreateSubscriptionParameters,
        buffer: _Buffer,
        url: str,
        connects: int = 1,
    ) -> None:
        super().__init__(session, params, None, queue_maxsize=1)
        self.buffer = buffer
        self.url = url
        self.connects = connects
        self._latest: datetime | None = None
        self._gap = False

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        self.last_publish_at = time.monotonic()
        message = publish_result.NotificationMessage
        if not message.NotificationData:
            return
        sequence = int(message.SequenceNumber)
        if not any(
            data_changes(n) is not None or isinstance(n, ua.EventNotificationList)
            for n in message.NotificationData
        ):
            # A status change only (the subscription's end, asyncua's word that the
            # connection is gone): no data, no place in the sequence to keep.
            for notification in message.NotificationData:
                if isinstance(notification, ua.StatusChangeNotification):
                    log.warning("%s: subscription status %s", self.url, notification.Status)
            return
        if sequence != (self.last_sequence_number or 0) + 1 and not self._gap:
            # Never seen on one TCP connection; the watermark stops here (it would
            # vouch for a message that did not arrive), the data still goes in.
            self._gap = True
            log.warning(
                "%s: notification message %d after %s: the watermark stops",
                self.url,
                sequence,
                self.last_sequence_number,
            )
        self.last_sequence_number = sequence
        buffer = self.buffer
        append = buffer.items.append
        monitored = self._monitored_items
        latest = self._latest
        for notification in message.NotificationData:
            changes = data_changes(notification)
            if changes is not None:
                for handle, value, when in changes:
                    data = monitored.get(handle)
                    if data is None or data.node is None:
                        log.warning("%s: notification for unknown handle %s", self.url, handle)
                        continue
                    append((data.node.nodeid, value, when))
                    if when is not None and (latest is None or when > latest):
                        latest = when
            elif isinstance(notification, ua.EventNotificationList):
                buffer.alarms.extend(e.event for e in self._explode_events(notification))
            elif isinstance(notification, ua.StatusChangeNotification):
                log.warning("%s: subscription status %s", self.url, notification.Status)
        self._latest = latest
        if not self._gap and self.subscription_id is not None:
            buffer.through = Through(self.connects, self.subscription_id, sequence, latest)
        if buffer.arrived is not None:
            buffer.arrived()


class CollectorLink(Protocol):
    """What the connector collects from: one OPC UA server (``EndpointLink``) or one MQTT
    session of a Sparkplug host application (``mes_core.connectors.sparkplug``)."""

    url: str
    bindings: dict[str, WorkUnitBinding]
    connected: asyncio.Event
    faults: int
    connects: int
    """Sessions made so far: the first, then one per reconnection."""

    def collect(self) -> list[tuple[int, BatchOutcome]]:
        """(notifications received, the events and state built from them) per source,
        for what arrived since the last call."""
        ...

    async def store_and_start(self, code: str, job: str, product: str, quantity: float) -> None:
        """Dispatch a job order to work unit ``code`` (ISA-95 Job Control); raises
        ``DispatchRefused``, ``UaError`` or ``TimeoutError`` when the machine does not
        take it."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop``; ride out every fault."""
        ...


class EndpointLink:
    """One OPC UA server: session, discovery, subscription, reconnect with backoff."""

    def __init__(
        self,
        url: str,
        options: ConnectorOptions,
        builder: EventBuilder,
        mapping: list[WorkUnitBinding] | None = None,
    ) -> None:
        self.url = url
        self.options = options
        self.builder = builder
        self.mapping = mapping
        self.buffer = _Buffer()
        self.bindings: dict[str, WorkUnitBinding] = {}
        self.client: Client | None = None
        self.connected = asyncio.Event()
        self._lost = asyncio.Event()
        self.connects = 0
        self.faults = 0

    def received_through(self) -> Through | None:
        """How far the notifications buffered (taken or not) reach."""
        return self.buffer.through

    def take(self) -> tuple[list[Notification], list[Any]]:
        """The notifications buffered since the last call."""
        buffer = self.buffer
        items, buffer.items = buffer.items, []
        alarms, buffer.alarms = buffer.alarms, []
        return items, alarms

    def collect(self) -> list[tuple[int, BatchOutcome]]:
        items, alarms = self.take()
        if not items and not alarms:
            return []
        return [(len(items) + len(alarms), self.builder.process(items, alarms))]

    async def _connection_lost(self, exc: Exception) -> None:
        self._lost.set()

    async def _connect(self) -> Client:
        # The watchdog probes a quiet connection; a loaded server may answer slowly, and a
        # closed socket is noticed at once anyway, so the probe is not hurried.
        client = Client(self.url, timeout=10, watchdog_intervall=WATCHDOG_S)
        if self.options.username:
            client.set_user(self.options.username)
            client.set_password(self.options.password or "")
        if self.options.security == "sign-encrypt":
            from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

            cert, key = await client_certificate(self.options.pki_dir)
            client.application_uri = CLIENT_APPLICATION_URI
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                str(cert),
                str(key),
                mode=ua.MessageSecurityMode.SignAndEncrypt,
            )
        client.connection_lost_callback = self._connection_lost
        await client.connect()
        return client

    async def _subscribe(self, client: Client) -> None:
        bindings = self.mapping if self.mapping is not None else await discover(client)
        if not bindings:
            raise LookupError(f"no work units found at {self.url}")
        new = {b.code: b for b in bindings}
        if set(new) != set(self.bindings):
            for b in bindings:
                log.info(
                    "bound %s (line %s): %d tags, %d process values, methods %s",
                    b.code,
                    b.line or "-",
                    len(b.tags),
                    len(b.process_values),
                    ",".join(sorted(b.methods)) or "-",
                )
        self.bindings = new
        nodes = self.builder.bind(bindings)
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=self.options.publishing_interval_ms,
            RequestedLifetimeCount=ua.UInt32(600),
            RequestedMaxKeepAliveCount=ua.UInt32(20),
            MaxNotificationsPerPublish=ua.UInt32(0),
            PublishingEnabled=True,
            Priority=ua.Byte(0),
        )
        session = client.uaclient.session
        lean_publish(session)
        sub = BufferedSubscription(session, params, self.buffer, self.url, self.connects + 1)
        revised = client.get_subscription_revised_params(params, await sub.init())
        if revised is not None:
            await sub.update(revised)
        # One CreateMonitoredItems over every node; queue size 0 asks for the server's
        # largest queue, so no intermediate value of a tag is dropped between publishes.
        results = await sub.subscribe_data_change(
            [client.get_node(n) for n in nodes], queuesize=0, sampling_interval=ua.Double(0.0)
        )
        bad = [r for r in results if isinstance(r, ua.StatusCode)]
        if bad:
            log.warning("%s: %d monitored items refused (%s)", self.url, len(bad), bad[0].name)
        if self.mapping is None:
            try:
                ns = await client.get_namespace_index(NAMESPACE_URI)
                etype = client.get_node(ua.NodeId(ua.String(ALARM_EVENT_TYPE), ua.Int16(ns)))
                await sub.subscribe_events(client.nodes.server, etype, queuesize=0)
            except UaError as exc:
                log.warning("%s: alarm events not available (%s)", self.url, exc)
        log.info(
            "subscribed to %d tags of %d work units at %s", len(nodes), len(bindings), self.url
        )

    async def store_and_start(self, code: str, job: str, product: str, quantity: float) -> None:
        """Call the work unit's ``StoreAndStart`` method (its status, if bad, raises)."""
        binding = self.bindings[code]
        client = self.client
        method = binding.methods.get("StoreAndStart")
        if client is None or binding.object is None or method is None:
            raise UaError(f"{code} has no StoreAndStart method or is not connected")
        await asyncio.wait_for(
            client.get_node(binding.object).call_method(
                method,
                ua.Variant(job, ua.VariantType.String),
                ua.Variant(product, ua.VariantType.String),
                ua.Variant(int(quantity), ua.VariantType.Int32),
            ),
            10.0,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop``; ride out every fault with backoff."""
        delay = self.options.backoff_initial_s
        while not stop.is_set():
            client: Client | None = None
            self._lost.clear()
            try:
                client = await self._connect()
                await self._subscribe(client)
                self.client = client
                self.connects += 1
                if self.connects > 1:
                    log.info("reconnected to %s; resynchronising from current values", self.url)
                self.connected.set()
                delay = self.options.backoff_initial_s
                stopped = asyncio.ensure_future(stop.wait())
                lost = asyncio.ensure_future(self._lost.wait())
                await asyncio.wait({stopped, lost}, return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                lost.cancel()
                if self._lost.is_set() and not stop.is_set():
                    self.faults += 1
                    log.warning("lost the OPC UA server %s; reconnecting", self.url)
            except (OSError, TimeoutError, UaError, LookupError, ConnectionError) as exc:
                self.faults += 1
                name = type(exc).__name__
                if name in ("BadUserAccessDenied", "BadIdentityTokenRejected"):
                    log.error(
                        "OPC UA server %s refused our credentials (%s); check --user; "
                        "retrying in %.1f s",
                        self.url,
                        name,
                        delay,
                    )
                else:
                    log.warning(
                        "OPC UA server %s unreachable (%s: %s); retrying in %.1f s",
                        self.url,
                        name,
                        exc,
                        delay,
                    )
            finally:
                self.connected.clear()
                self.client = None
                if client is not None:
                    with contextlib.suppress(Exception):
                        # The session may be half dead: closing it may fail, that is fine.
                        await asyncio.wait_for(client.disconnect(), 2.0)
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, self.options.backoff_max_s)
