"""A second, independent OPC UA stack against the twin's server: node-opcua (npm).

``node/interop.js`` browses to a work unit, reads its tags (with their data types and a
process value's range and units), subscribes to a cumulative counter and calls
``StoreAndStart`` (once right, once without arguments). node-opcua is installed into
``tests/opcua/node/node_modules`` from the committed lock file on first use.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import LoopThread
from support import npm_installed

from twin.opcua.runtime import ServedPlant

NODE_DIR = Path(__file__).with_name("node")


@pytest.fixture(scope="module")
def node_opcua() -> str:
    return npm_installed(NODE_DIR, "node-opcua-client", "the node-opcua interoperability test")


def test_node_opcua_client_browses_reads_subscribes_and_calls(
    served: tuple[ServedPlant, LoopThread], node_opcua: str
) -> None:
    plant, _ = served
    done = subprocess.run(
        [node_opcua, "interop.js", plant.endpoints[0]],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["browsePathStatus"] == "Good"
    assert out["typeDefinition"] == ["WorkUnitType"]
    assert {"State", "ProdProcessedCount", "StoreAndStart", "ProcessValues"} <= set(out["children"])
    read = out["read"]
    assert read["State"]["type"] == "Int32"
    assert read["StateName"]["type"] == "String"
    assert read["ProdProcessedCount"]["type"] == "Int32"
    assert read["FillWeight"]["type"] == "Double"
    assert (read["EURange"]["low"], read["EURange"]["high"]) == (480, 520)
    assert read["EngineeringUnits"] == "g"
    sub = out["subscription"]
    assert sub["notifications"] >= 2, "the counter never changed during two seconds"
    assert sub["last"] > sub["first"]
    assert out["call"] == {"storeAndStart": "Good", "withoutArguments": "BadArgumentsMissing"}
    assert "JO-NODE-1" in plant.engine.ledger.summary()["job_orders"]
