"""The fault-injection TCP proxy forwards, cuts every connection, and restores."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from twin.scenario.proxy import TcpProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _roundtrip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        return s.recv(4096)


def test_proxy_forwards_cuts_and_restores(echo_port: int) -> None:
    proxy = TcpProxy("127.0.0.1", echo_port).start()
    try:
        assert _roundtrip(proxy.port, b"hello") == b"hello"
        live = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        live.sendall(b"x")
        assert live.recv(10) == b"x"

        proxy.cut()
        # the open connection is dropped ...
        live.settimeout(5)
        with pytest.raises(OSError):
            live.sendall(b"y" * 100_000)
            if not live.recv(10):
                raise ConnectionResetError("closed by the proxy")
        live.close()
        # ... and new ones get nothing through
        with pytest.raises(OSError):
            got = _roundtrip(proxy.port, b"lost")
            if not got:
                raise ConnectionResetError("refused by the proxy")

        proxy.restore()
        assert _roundtrip(proxy.port, b"again") == b"again"
        assert proxy.cuts == 1
    finally:
        proxy.stop()
