"""A lean encoder of Sparkplug B data payloads (``NDATA``/``DDATA``), byte for byte what
protobuf writes.

An edge node publishes a ``DDATA`` per device and batch of changes: a ``Payload`` with its
``timestamp``, one ``Metric`` per change (``name``, ``timestamp``, ``datatype`` and the value,
or ``is_null``) and its ``seq``. Building it as protobuf messages (``Payload()``,
``metrics.add``, ``set_value``) cost ~3.5 us per metric, a fifth of the twin's CPU at
20,000 metric changes/s. This writes the same bytes from pieces kept per metric name (its
tag and length-prefixed name, its data type) and ``struct``: ~1 us. The protobuf wire
format (protobuf.dev, "Encoding"): a field is its key ``(number << 3) | wire type``, then a
varint, 8 or 4 little-endian bytes, or a length and as many bytes; fields in the order of
their numbers, as protobuf's serializers write them (``tests/sparkplug`` compares the two for
every data type, with nulls, negative and wide integers, non-ASCII names and strings).

Births, deaths and commands (rare, with properties) stay protobuf messages
(``sparkplug_b.payload``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from sparkplug_b.payload import DataType

_BYTE = tuple(bytes((i,)) for i in range(128))


def varint(n: int) -> bytes:
    """``n`` (>= 0) as a protobuf varint: 7 bits a byte, least significant first."""
    if n < 0x80:
        return _BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Keys (field number << 3 | wire type) of the Payload and Metric fields written here.
_PAYLOAD_TIMESTAMP = b"\x08"  # 1, varint
_PAYLOAD_METRIC = b"\x12"  # 2, length-delimited
_PAYLOAD_SEQ = b"\x18"  # 3, varint
_NAME = 0x0A  # 1, length-delimited
_TIMESTAMP = b"\x18"  # 3, varint
_DATATYPE = 0x20  # 4, varint
_IS_NULL = b"\x38\x01"  # 7, varint true
_INT = b"\x50"  # 10 int_value, varint (uint32)
_LONG = b"\x58"  # 11 long_value, varint (uint64)
_FLOAT = struct.Struct("<Bf")  # 12 float_value, fixed32: key 0x65
_DOUBLE = struct.Struct("<Bd")  # 13 double_value, fixed64: key 0x69
_BOOL = (b"\x70\x00", b"\x70\x01")  # 14 boolean_value, varint
_STRING = b"\x7a"  # 15 string_value, length-delimited

_UINT32 = {DataType.Int8, DataType.Int16, DataType.Int32, DataType.UInt8, DataType.UInt16,
           DataType.UInt32}  # fmt: skip
_UINT64 = {DataType.Int64, DataType.UInt64, DataType.DateTime}

ValueEncoder = Callable[[Any], bytes]


def _double(value: Any) -> bytes:
    return _DOUBLE.pack(0x69, value)


def _float(value: Any) -> bytes:
    return _FLOAT.pack(0x65, value)


def _uint32(value: Any) -> bytes:
    return _INT + varint(int(value) & 0xFFFFFFFF)


def _uint64(value: Any) -> bytes:
    return _LONG + varint(int(value) & 0xFFFFFFFFFFFFFFFF)


def _boolean(value: Any) -> bytes:
    return _BOOL[1 if value else 0]


def _string(value: Any) -> bytes:
    raw = value.encode()
    return _STRING + varint(len(raw)) + raw


def value_encoder(datatype: int) -> ValueEncoder:
    """The bytes of a value of ``datatype`` (its field key and value; signed integers as
    their two's complement in the unsigned field, as ``payload.set_value`` stores them)."""
    dt = DataType(datatype)
    if dt == DataType.Double:
        return _double
    if dt == DataType.Float:
        return _float
    if dt in _UINT32:
        return _uint32
    if dt in _UINT64:
        return _uint64
    if dt == DataType.Boolean:
        return _boolean
    if dt in (DataType.String, DataType.Text):
        return _string
    raise ValueError(f"data type {datatype} is not supported")


class MetricCodec:
    """One metric's fixed pieces: its name and data type, and how its value is written."""

    __slots__ = ("head", "null", "value")

    def __init__(self, name: str, datatype: int) -> None:
        raw = name.encode()
        # name, then the timestamp's key: the timestamp varint follows
        self.head = bytes((_NAME,)) + varint(len(raw)) + raw + _TIMESTAMP
        kind = bytes((_DATATYPE,)) + varint(int(datatype))
        self.null = kind + _IS_NULL
        encode = value_encoder(datatype)
        if encode is _double:  # the hot path: the data type and the double in one pack
            both = struct.Struct(f"<{len(kind)}sBd")
            self.value: ValueEncoder = lambda v: both.pack(kind, 0x69, v)
        else:
            self.value = lambda v: kind + encode(v)

    def body(self, value: Any, timestamp: bytes) -> bytes:
        """The metric's bytes (without its own key and length); ``timestamp`` a varint."""
        return self.head + timestamp + (self.null if value is None else self.value(value))


def data_payload(timestamp: int, metrics: Sequence[bytes], seq: int) -> bytes:
    """An ``NDATA``/``DDATA`` payload of metric bodies (``MetricCodec.body``)."""
    parts = [_PAYLOAD_TIMESTAMP, varint(timestamp)]
    for body in metrics:
        parts.append(_PAYLOAD_METRIC)
        parts.append(varint(len(body)))
        parts.append(body)
    parts.append(_PAYLOAD_SEQ)
    parts.append(varint(seq))
    return b"".join(parts)
