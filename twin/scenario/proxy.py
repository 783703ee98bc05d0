"""A TCP proxy the runner can cut and restore: the "network drop" of a fault injection.

Put between a client and a server (the connector and the twin's OPC UA server, or the MES
and PostgreSQL), it forwards bytes both ways. ``cut()`` closes every open connection and
refuses new ones (the peer sees a reset, as when a switch port dies); ``restore()`` lets
connections through again. ``blackhole()`` is the other failure: connections are
accepted and what they send is swallowed, never answered (a hung server, a path that
drops everything without a reset). It runs in its own thread with its own event loop, so the
runner can use it from synchronous code; it listens on a free loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``; cut and restore on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.cuts = 0
        self._up = True
        self._silent = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        """Start listening (blocks until the port is bound); returns self."""
        self._thread = threading.Thread(target=self._run, name="mestwin-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"TCP proxy could not start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def stop(self) -> None:
        """Close everything and stop the thread."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        with contextlib.suppress(TimeoutError):
            fut.result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self._close_all()

    # -- faults ---------------------------------------------------------------------------

    def cut(self) -> None:
        """Drop every connection and refuse new ones until ``restore()``."""
        self._up = False
        self.cuts += 1
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._close_all)

    def blackhole(self) -> None:
        """Accept connections and swallow what they send, never answering, and let the
        open ones go silent too, until ``restore()``."""
        self._silent = True

    def restore(self) -> None:
        """Let connections through again (after a blackhole the open ones are dropped:
        their conversations lost bytes)."""
        self._up = True
        if self._silent:
            self._silent = False
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._close_all)

    @property
    def is_up(self) -> bool:
        return self._up

    # -- forwarding -----------------------------------------------------------------------

    def _close_all(self) -> None:
        for w in list(self._writers):
            # abort, not close: a cut link does not say goodbye (no FIN, buffered data lost)
            w.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._up:
            writer.transport.abort()
            return
        if self._silent:
            self._writers.add(writer)
            with contextlib.suppress(ConnectionError, OSError):
                while await reader.read(65536):
                    pass  # swallowed
            self._writers.discard(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._writers.discard(writer)
        self._writers.discard(up_writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while self._up:
                data = await reader.read(65536)
                if not data or not self._up:
                    break
                if self._silent:
                    continue  # swallowed
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if self._up:
                with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                    writer.close()
            else:
                writer.transport.abort()
