"""``mestwin connect``: run the OPC UA connector (registered by ``mestwin.cli``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
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
    opcua: Annotated[
        list[str], typer.Option("--opcua", help="OPC UA server URL (repeat for several)")
    ],
    mes: Annotated[str, typer.Option("--mes", help="MES base URL, e.g. http://127.0.0.1:8000")],
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
    stats: Annotated[
        Path | None, typer.Option(help="write counters as JSON to this file every 0.5 s")
    ] = None,
) -> None:
    """Collect plant events over OPC UA into the MES; dispatch job orders to machines."""
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
    try:
        options = ConnectorOptions(
            initial_counts=initial_counts,
            username=username,
            password=password,
            security=security,
            dispatch_interval_s=2.0 if dispatch else 0.0,
            batch_size=batch_size,
        )
        bindings = bindings_from_mapping(load_mapping(mapping)) if mapping else None
    except (ValueError, MappingError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for url in opcua:
        if not url.startswith("opc.tcp://"):
            typer.echo(f"error: --opcua {url!r}: expected opc.tcp://HOST:PORT", err=True)
            raise typer.Exit(2)
    spool_path = spool or default_spool(opcua)

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
                connector = Connector(opcua, client, store, options, bindings)
                writer = (
                    asyncio.create_task(_write_stats(connector, stats, stop)) if stats else None
                )
                await connector.run(stop)
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


def register(groups: CommandGroups) -> None:
    """Add ``mestwin connect`` to the app."""
    groups.root.command("connect")(connect)
