"""The async client is generated from the sync one; the committed file must be current."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mes_core.client import AsyncMesClient, MesClient
from mes_core.client.gen_async import HERE, generate


def test_async_client_is_generated_from_the_sync_client(tmp_path: Path) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.fail("ruff (a dev dependency) is needed to compare the generated client")
    out = tmp_path / "_async.py"
    out.write_text(generate((HERE / "_sync.py").read_text()))
    root = Path(__file__).resolve().parents[2]
    for args in (["format", "-q"], ["check", "--fix", "-q"], ["format", "-q"]):
        subprocess.run([ruff, *args, str(out)], cwd=root, check=True)
    assert out.read_text() == (HERE / "_async.py").read_text(), (
        "mes_core/client/_async.py is stale: run python mes_core/client/gen_async.py, then "
        "ruff check --fix and ruff format"
    )


def test_async_client_has_every_method_of_the_sync_client() -> None:
    # The execution core's own methods (parts' mixins keep their own parity).
    sync = {n for n in vars(MesClient) if not n.startswith("_")}
    asyn = {n for n in vars(AsyncMesClient) if not n.startswith("_")}
    assert sync == asyn
