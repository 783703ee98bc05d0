"""The lean DDATA encoder writes exactly the bytes protobuf writes (no broker, < 1 s)."""

from __future__ import annotations

from typing import Any

import pytest

from sparkplug_b.encoding import MetricCodec, data_payload, varint
from sparkplug_b.payload import DataType, Payload, metric_value, set_value

CASES: list[tuple[str, DataType, Any]] = [
    ("ProcessValues/Temperature", DataType.Double, 72.25),
    ("ProcessValues/Tiny", DataType.Double, -1e-300),
    ("ProcessValues/Whole", DataType.Double, 3),
    ("ProcessValues/Never", DataType.Double, None),
    ("Ratio", DataType.Float, 0.1),
    ("State", DataType.Int32, 6),
    ("State", DataType.Int32, -1),
    ("Small", DataType.Int8, -128),
    ("Word", DataType.UInt16, 65535),
    ("Count", DataType.UInt32, 4_294_967_295),
    ("Big", DataType.Int64, -(2**63)),
    ("Wide", DataType.UInt64, 2**64 - 1),
    ("When", DataType.DateTime, 1_764_000_000_123),
    ("Alarms/Breakdown/Active", DataType.Boolean, True),
    ("Alarms/Breakdown/Active", DataType.Boolean, False),
    ("StopReason", DataType.String, ""),
    ("StopReason", DataType.String, "blocked: Förderband voll ✓"),
    ("Notes", DataType.Text, "x" * 300),
    ("Température/Ofen", DataType.Double, 180.0),
    ("JobOrderID", DataType.String, None),
]


def _protobuf(timestamp: int, seq: int, metrics: list[tuple[str, DataType, Any, int]]) -> bytes:
    payload = Payload(timestamp=timestamp)
    for name, datatype, value, ts in metrics:
        set_value(payload.metrics.add(name=name, timestamp=ts), datatype, value)
    payload.seq = seq
    return bytes(payload.SerializeToString())


@pytest.mark.parametrize(("name", "datatype", "value"), CASES)
def test_a_metric_of_every_data_type_is_written_as_protobuf_writes_it(
    name: str, datatype: DataType, value: Any
) -> None:
    ts = 1_764_000_000_000
    body = MetricCodec(name, datatype).body(value, varint(ts))
    ours = data_payload(ts + 5, [body], 17)
    assert ours == _protobuf(ts + 5, 17, [(name, datatype, value, ts)])
    decoded = Payload.FromString(ours).metrics[0]
    expected = value if datatype != DataType.Float else pytest.approx(value)
    assert metric_value(decoded) == expected


def test_a_payload_of_many_metrics_and_timestamps_is_written_as_protobuf_writes_it() -> None:
    metrics = [(n, t, v, 1_700_000_000_000 + i * 997) for i, (n, t, v) in enumerate(CASES * 8)]
    for seq in (0, 1, 127, 128, 255):
        bodies = [MetricCodec(n, t).body(v, varint(ts)) for n, t, v, ts in metrics]
        assert data_payload(1_764_000_000_000, bodies, seq) == _protobuf(
            1_764_000_000_000, seq, metrics
        )


def test_varint_matches_protobuf_at_the_byte_boundaries() -> None:
    for n in (0, 1, 127, 128, 300, 16_383, 16_384, 2**32 - 1, 2**63, 2**64 - 1):
        assert varint(n) == Payload(seq=n).SerializeToString()[1:]


def test_an_unsupported_data_type_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="data type 0"):
        MetricCodec("Odd", DataType.Unknown)
