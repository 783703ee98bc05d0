"""An independent Sparkplug implementation reads the twin: Eclipse Tahu's JavaScript
payload codec (``sparkplug-payload`` from npm, ``node/decode.js``) decodes the twin's
births and data, checks the seq numbering, and sees the counters rise. ~5 s."""

from __future__ import annotations

import json
import time

from mqtt_support import (
    BROKER_URL,
    Twin,
    require_broker,
    start_node_script,
    tahu_node,
    unique_group,
)


def test_tahu_decodes_births_and_data_and_sees_counters_rise() -> None:
    require_broker()
    node = tahu_node()
    group = unique_group("tahu")
    proc = start_node_script(node, "decode.js", BROKER_URL, group, "60", ready="ready")
    twin = Twin(group)
    try:
        for _ in range(30):  # 30 simulated seconds over ~3 s
            twin.advance(1.0)
            time.sleep(0.1)
        final = twin.engine.work_units["LA-FILL"].processed
        out, err = proc.communicate(f"LA-FILL {final}\n", timeout=90)
    finally:
        proc.kill()
        twin.close()
    assert proc.returncode == 0, err[-2000:]
    seen = json.loads(out.strip().splitlines()[-1])
    assert set(seen["nbirth"]) == {"LA", "LB"}
    assert seen["nbirth"]["LA"]["seq"] == 0 and seen["nbirth"]["LA"]["bdSeq"] == 0
    assert seen["nbirth"]["LA"]["bdSeqType"] == "UInt64"  # as the spec (and Tahu) have it
    assert set(seen["dbirth"]) == {"LA-FILL", "LA-CAP", "LB-PRESS"}
    filler = seen["dbirth"]["LA-FILL"]
    assert filler["State"]["type"] == "Int32"
    assert filler["StateName"]["type"] == "String"
    assert filler["ProdProcessedCount"]["type"] == "Int32"
    weight = filler["ProcessValues/FillWeight"]
    assert weight["type"] == "Double"
    assert weight["properties"] == {
        "engUnit": "g",
        "engLow": 480,
        "engHigh": 520,
        "characteristic": "fill_weight",
    }
    assert seen["seqErrors"] == []
    counts = seen["counters"]["LA-FILL"]
    assert len(counts) >= 3 and counts == sorted(counts) and counts[-1] > counts[0]
    assert counts[-1] == final
