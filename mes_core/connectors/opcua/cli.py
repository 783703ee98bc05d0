"""``mestwin connect``: run the OPC UA connector (registered by ``mestwin.cli``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups


def default_spool(urls: list[str]) -> Path:
    """One spool file per set of servers, so two connectors never share one."""
    digest = hashlib.sha256("\n".join(sorted(urls)).encode()).hexdigest()[:12]
    return Path("mestwin-data") / f"connector-{digest}.sqlite"


def connect(
    mes: Annotated[str, typer.Option("--mes", help="MES base URL, e.g. http://127.0.0.1:8000")],
    opcua: Annotated[
        list[str] | None, typer.Option("--opcua", help="OPC UA server URL (repeat for several)")
    ] = None,
    sparkplug: Annotated[
        str | None,
        typer.Option(
            "--sparkplug",
            help="MQTT broker to ingest Sparkplug B from as a primary host application, "
            "e.g. mqtt://127.0.0.1:1883 (instead of --opcua)",
        ),
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="Sparkplug group id served (repeat; default: mestwin)"),
    ] = None,
    host_id: Annotated[
        str, typer.Option(help="Sparkplug primary host id (its STATE topic)")
    ] = "mestwin-mes",
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="MESTWIN_API_KEY", help="MES API key (integration)"),
    ] = None,
    spool: Annotated[
        Path | None, typer.Option(help="spool file (default: mestwin-data/connector-*.sqlite)")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="YAML tag mapping for servers without the model")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(envvar="MESTWIN_OPCUA_USER", help="OPC UA NAME:PASSWORD (when asked)"),
    ] = None,
    security: Annotated[str, typer.Option(help="none | sign-encrypt")] = "none",
    initial_counts: Annotated[
        str, typer.Option(help="first sight of a counter: count (from 0) | skip")
    ] = "count",
    dispatch: Annotated[
        bool, typer.Option("--dispatch/--no-dispatch", help="send released job orders")
    ] = True,
    duration: Annotated[float, typer.Option(help="stop after this many seconds (0: never)")] = 0.0,
    batch_size: Annotated[
        int, typer.Option(help="plant events per POST to the MES (1..10000)")
    ] = 2000,
    publishing_interval: Annotated[
        float,
        typer.Option(help="OPC UA publishing interval asked of the servers (ms, 10..10000)"),
    ] = 100.0,
    stats: Annotated[
        Path | None, typer.Option(help="write counters as JSON to this file every 0.5 s")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            help="serve the counters over HTTP on this local HOST:PORT: GET /status; "
            "POST /flush answers once all received so far is sent to the MES; "
            "GET /watermark how far the MES has ingested what a server sent"
        ),
    ] = None,
    name: Annotated[
        str,
        typer.Option(
            help="this connector's name on the MES's /metrics (spool depth); "
            "default: opcua: and its server URLs"
        ),
    ] = "",
) -> None:
    """Collect plant events over OPC UA (or MQTT Sparkplug B) into the MES; dispatch job
    orders to machines (OPC UA StoreAndStart, or the Sparkplug DCMD of the same name)."""
    from mes_core.client import AsyncMesClient
    from mes_core.connectors.opcua.connector import Connector, ConnectorOptions, quiet_asyncua
    from mes_core.connectors.opcua.discovery import (
        MappingError,
        bindings_from_mapping,
        load_mapping,
    )
    from mes_core.connectors.opcua.spool import Spool

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    quiet_asyncua()
    username = password = None
    if user is not None:
        username, sep, password = user.partition(":")
        if not sep or not username:
            typer.echo(f"error: --user {user!r}: expected NAME:PASSWORD", err=True)
            raise typer.Exit(2)
    if not 10.0 <= publishing_interval <= 10_000.0:
        typer.echo(f"error: --publishing-interval {publishing_interval:g}: 10..10000 ms", err=True)
        raise typer.Exit(2)
    try:
        options = ConnectorOptions(
            initial_counts=initial_counts,
            username=username,
            password=password,
            security=security,
            dispatch_interval_s=2.0 if dispatch else 0.0,
            batch_size=batch_size,
            publishing_interval_ms=publishing_interval,
            name=name.strip(),
        )
        bindings = bindings_from_mapping(load_mapping(mapping)) if mapping else None
    except (ValueError, MappingError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    opcua = opcua or []
    if bool(opcua) == bool(sparkplug):
        typer.echo("error: give --opcua URL (repeatable) or --sparkplug URL, one kind", err=True)
        raise typer.Exit(2)
    sparkplug_host: Any = None
    if sparkplug:
        from mes_core.connectors.sparkplug.host import HostLink, HostOptions

        try:
            host_options = HostOptions(
                groups=tuple(group or ["mestwin"]), host_id=host_id, initial_counts=initial_counts
            )
            sparkplug_host = (HostLink, sparkplug, host_options)
            HostLink(sparkplug, host_options, {})  # checks the URL and the ids
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    for url in opcua:
        if not url.startswith("opc.tcp://"):
            typer.echo(f"error: --opcua {url!r}: expected opc.tcp://HOST:PORT", err=True)
            raise typer.Exit(2)
    spool_path = spool or default_spool(opcua or [f"sparkplug:{sparkplug}:{host_id}"])
    status_address: tuple[str, int] | None = None
    if status is not None:
        status_host, _, port = status.rpartition(":")
        if not status_host or not port.isdigit():
            typer.echo(f"error: --status {status!r}: expected HOST:PORT", err=True)
            raise typer.Exit(2)
        status_address = (status_host, int(port))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if duration:
            loop.call_later(duration, stop.set)
        store = Spool(spool_path)
        try:
            async with AsyncMesClient(
                mes, api_key=api_key or os.environ.get("MESTWIN_API_KEY")
            ) as client:
                links = None
                if sparkplug_host is not None:
                    link_class, url, host_options = sparkplug_host
                    links = [link_class(url, host_options, store.state())]
                connector = Connector(opcua, client, store, options, bindings, links=links)
                writer = (
                    asyncio.create_task(_write_stats(connector, stats, stop)) if stats else None
                )
                server = (
                    StatusServer(status_address, connector, loop)
                    if status_address is not None
                    else None
                )
                try:
                    await connector.run(stop)
                finally:
                    if server is not None:
                        server.close()
                if writer is not None and stats is not None:
                    await writer
                    await _write_stats(connector, stats, stop)  # the final figures
        finally:
            store.close()

    asyncio.run(main())


async def _write_stats(connector: Any, path: Path, stop: asyncio.Event) -> None:
    """Counters for monitoring and benchmarks, replaced atomically every 0.5 s."""
    tmp = path.with_suffix(".tmp")
    while True:
        tmp.write_text(json.dumps(connector.stats()), encoding="utf-8")
        tmp.replace(path)
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


FLUSH_TIMEOUT_S = 10.0
"""Longest a ``POST /flush`` waits for the MES to take what was collected."""


async def flush(connector: Any, timeout: float = FLUSH_TIMEOUT_S) -> dict[str, Any]:
    """Collect every notification received so far and wait until the MES has taken all
    the events made (or ``timeout`` passed: the MES is away, they stay spooled); the
    counters then.

    A notification the OPC UA client acknowledged to the server before this was asked is
    in the subscription's queue or already in the connector's buffers: the client queues
    a publish response's notifications before it acknowledges them, and the consumer's
    wake-up is scheduled then, so it runs before this request is read (one more turn of
    the loop is given anyway).
    """
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)
    connector.collect()
    deadline = loop.time() + timeout
    while connector.outbox and loop.time() < deadline:
        await asyncio.sleep(0.002)
    stats: dict[str, Any] = connector.stats()
    return stats


async def _status(connector: Any) -> dict[str, Any]:
    stats: dict[str, Any] = connector.stats()
    return stats


async def watermark(connector: Any, query: dict[str, list[str]], timeout: float) -> dict[str, Any]:
    """``GET /watermark``: how far the MES has ingested what an OPC UA server sent.

    ``through=SUBSCRIPTION:SEQUENCE`` waits (collecting as notifications arrive) until the
    MES has every notification message of that subscription up to that sequence number
    (``reached``); ``after=LATEST`` waits until the watermark's latest source time is
    other than ``LATEST`` (a watcher following it). ``url=`` names the server when the
    connector has several. The counters of ``GET /status`` come with it."""
    named = query.get("url")
    url = connector.endpoint(named[0] if named else None)
    if url is None:
        return {"error": "url: name one of the connector's OPC UA servers"}
    reached = None
    if "through" in query:
        sub, _, seq = query["through"][0].partition(":")
        reached = await connector.wait_ingested(url, int(sub), int(seq), timeout)
    elif "after" in query:
        await connector.wait_advance(url, query["after"][0] or None, timeout)
    stats: dict[str, Any] = connector.stats()
    through = connector.ingested.get(url)
    return stats | {
        "url": url,
        "reached": reached,
        "watermark": through.to_json() if through is not None else None,
    }


class StatusServer:
    """``--status HOST:PORT``: the connector's counters over local HTTP, for monitoring
    and for test benches that must know the MES has everything (``POST /flush``).

    The HTTP server runs in a thread of its own; the counters are read on the
    connector's event loop (the spool is not shared across threads)."""

    def __init__(
        self, address: tuple[str, int], connector: Any, loop: asyncio.AbstractEventLoop
    ) -> None:
        from concurrent.futures import CancelledError
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _on_loop(self, coro: Any, timeout: float) -> None:
                try:
                    body = asyncio.run_coroutine_threadsafe(coro, loop).result(timeout + 5)
                except (RuntimeError, TimeoutError, CancelledError) as exc:  # loop stopping
                    self._answer(503, {"error": f"{type(exc).__name__}: {exc}"})
                    return
                self._answer(200, body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/watermark":
                    query = parse_qs(url.query)
                    try:
                        timeout = min(max(float(query.get("timeout", ["0"])[0]), 0.0), 60.0)
                        body = asyncio.run_coroutine_threadsafe(
                            watermark(connector, query, timeout), loop
                        ).result(timeout + 5)
                    except ValueError as exc:
                        self._answer(400, {"error": f"{exc}"})
                        return
                    except (RuntimeError, TimeoutError, CancelledError) as exc:
                        self._answer(503, {"error": f"{type(exc).__name__}: {exc}"})
                        return
                    self._answer(400 if "error" in body else 200, body)
                    return
                if url.path != "/status":
                    self._answer(404, {"error": "GET /status, GET /watermark or POST /flush"})
                    return
                self._on_loop(_status(connector), 5)

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if url.path != "/flush":
                    self._answer(404, {"error": "GET /status or POST /flush"})
                    return
                try:
                    timeout = float(parse_qs(url.query).get("timeout", [FLUSH_TIMEOUT_S])[0])
                except ValueError:
                    self._answer(400, {"error": "timeout: seconds expected"})
                    return
                timeout = min(max(timeout, 0.0), 60.0)
                self._on_loop(flush(connector, timeout), timeout)

            def log_message(self, format: str, *args: Any) -> None:
                return  # one line per request would drown the connector's log

        self.httpd = ThreadingHTTPServer(address, Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="connector-status", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def register(groups: CommandGroups) -> None:
    """Add ``mestwin connect`` to the app."""
    groups.root.command("connect")(connect)
