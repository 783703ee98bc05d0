"""A Tryton server per test module, on a fresh database (starting one costs seconds; the
database template, created once by trytond-admin, about half a minute of CPU)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import require


def tryton_installed() -> bool:
    return importlib.util.find_spec("trytond") is not None


@pytest.fixture(scope="module")
def tryton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    require(tryton_installed(), "Tryton (the extra named tryton: pip install -e '.[tryton]')")
    from mestwin_tryton.server import TrytonServer

    folder: Path = tmp_path_factory.mktemp("tryton")
    server = TrytonServer(folder)
    server.start(timeout=120.0)
    try:
        yield server
    finally:
        server.stop()
