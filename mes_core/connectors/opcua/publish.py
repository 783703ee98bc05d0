"""A lean decoder of the publish responses the connector's sessions receive.

asyncua decodes every ``PublishResponse`` with its generic struct decoder: per monitored
item notification a ``MonitoredItemNotification``, a ``DataValue``, a ``Variant`` and a
``StatusCode`` are built field by field through per-field closures, ~1/3 of the
connector's CPU at 20,000 tag changes/s. The connector only needs, per notification, the
client handle, the value and the timestamp (``BufferedSubscription``); so for a
``DataChangeNotification`` (OPC UA Part 6, 5.2.2.17 DataValue, 5.2.2.16 Variant, Part 4
7.25.2) this decoder reads those with ``struct`` straight from the message into a
``DataChanges`` of ``(ClientHandle, value, SourceTimestamp or ServerTimestamp)`` tuples.

Everything else goes through asyncua's own decoders, unchanged: the response header, the
publish result's fields, every other notification (events, status changes), and within a
data change any value that is not a scalar of a fixed-size type or a String (arrays,
structures, LocalizedText...) or a DataValue with picoseconds. The values and timestamps
are the ones asyncua's decoder gives (tested on encoded responses of every kind).

``lean_publish(session)`` installs it on one session only (not process-wide), and only on
the asyncua versions it was checked against (``fastpaths.ASYNCUA_CHECKED``); elsewhere asyncua's
own decoding stays, which ``BufferedSubscription`` handles as well.
"""

from __future__ import annotations

import logging
import struct
import types
from collections.abc import Callable
from datetime import datetime
from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer, NotEnoughData
from asyncua.ua import ua_binary
from asyncua.ua.uaerrors import UaStructParsingError

import fastpaths

log = logging.getLogger(__name__)

DataChange = tuple[int, Any, datetime | None]
"""(ClientHandle, the Variant's value or None, SourceTimestamp or else ServerTimestamp)."""


class DataChanges:
    """A ``DataChangeNotification`` decoded lean: ``items`` in the order received."""

    __slots__ = ("items",)

    def __init__(self, items: list[DataChange]) -> None:
        self.items = items


def data_changes(notification: Any) -> list[DataChange] | None:
    """The data changes of ``notification`` as ``(ClientHandle, value, timestamp)``,
    whether decoded lean (``DataChanges``) or by asyncua (``DataChangeNotification``);
    ``None`` for any other notification (events, status changes)."""
    if isinstance(notification, DataChanges):
        return notification.items
    if isinstance(notification, ua.DataChangeNotification):
        changes: list[DataChange] = []
        for item in notification.MonitoredItems:
            value = item.Value
            variant = value.Value
            changes.append(
                (
                    item.ClientHandle,
                    None if variant is None else variant.Value,
                    value.SourceTimestamp or value.ServerTimestamp,
                )
            )
        return changes
    return None


_PUBLISH_RESPONSE = b"\x01\x00" + struct.pack(
    "<H", ua.ObjectIds.PublishResponse_Encoding_DefaultBinary
)
_DATA_CHANGE = b"\x01\x00" + struct.pack(
    "<H", ua.ObjectIds.DataChangeNotification_Encoding_DefaultBinary
)
"""FourByte NodeIds (Part 6, 5.2.2.9) of the two encodings, as asyncua and most servers
send them; another encoding of the same NodeId takes asyncua's decoder."""

_I32 = struct.Struct("<i").unpack_from
_I64 = struct.Struct("<q").unpack_from
_HANDLE_MASK = struct.Struct("<IB").unpack_from
_SCALARS: dict[int, struct.Struct] = {
    ua.VariantType.Boolean.value: struct.Struct("<?"),
    ua.VariantType.SByte.value: struct.Struct("<b"),
    ua.VariantType.Byte.value: struct.Struct("<B"),
    ua.VariantType.Int16.value: struct.Struct("<h"),
    ua.VariantType.UInt16.value: struct.Struct("<H"),
    ua.VariantType.Int32.value: struct.Struct("<i"),
    ua.VariantType.UInt32.value: struct.Struct("<I"),
    ua.VariantType.Int64.value: struct.Struct("<q"),
    ua.VariantType.UInt64.value: struct.Struct("<Q"),
    ua.VariantType.Float.value: struct.Struct("<f"),
    ua.VariantType.Double.value: struct.Struct("<d"),
}
_STRING = ua.VariantType.String.value
_VALUE, _STATUS, _SOURCE_TS, _SERVER_TS = 0x01, 0x02, 0x04, 0x08
_LEAN_MASK = _VALUE | _STATUS | _SOURCE_TS | _SERVER_TS
"""DataValue encoding bits read here; any other (picoseconds) takes asyncua's decoder."""


def _data_changes(data: Any, pos: int, end: int) -> DataChanges:
    """The MonitoredItems of a DataChangeNotification body at ``data[pos:end]``."""
    (count,) = _I32(data, pos)
    pos += 4
    items: list[DataChange] = []
    append = items.append
    times: dict[int, datetime] = {}
    to_datetime = ua.win_epoch_to_datetime
    encoding = ua_binary.get_string_encoding()
    for _ in range(count):
        handle, mask = _HANDLE_MASK(data, pos)
        pos += 5
        if mask & ~_LEAN_MASK:
            buf = Buffer(data, pos - 1, end - pos + 1)
            dv = ua_binary.struct_from_binary(ua.DataValue, buf)
            pos = buf.cur_pos
            append(
                (
                    handle,
                    None if dv.Value is None else dv.Value.Value,
                    dv.SourceTimestamp or dv.ServerTimestamp,
                )
            )
            continue
        value = None
        if mask & _VALUE:
            vmask = data[pos]
            scalar = _SCALARS.get(vmask)  # array or dimension bits set: never found
            if scalar is not None:
                (value,) = scalar.unpack_from(data, pos + 1)
                pos += 1 + scalar.size
            elif vmask == _STRING:
                (length,) = _I32(data, pos + 1)
                pos += 5
                if length >= 0:
                    value = bytes(data[pos : pos + length]).decode(encoding, "surrogateescape")
                    pos += length
            elif vmask == 0:
                pos += 1  # Null variant
            else:
                buf = Buffer(data, pos, end - pos)
                value = ua_binary.variant_from_binary(buf).Value
                pos = buf.cur_pos
        if mask & _STATUS:
            pos += 4
        when = None
        if mask & _SOURCE_TS:
            (raw,) = _I64(data, pos)
            pos += 8
            when = times.get(raw)
            if when is None:
                when = times[raw] = to_datetime(raw)
        if mask & _SERVER_TS:
            if when is None:
                (raw,) = _I64(data, pos)
                when = times.get(raw)
                if when is None:
                    when = times[raw] = to_datetime(raw)
            pos += 8
        append((handle, value, when))
    if pos > end:
        raise NotEnoughData("DataChangeNotification longer than its body")
    return DataChanges(items)


def _field_decoders(cls: type) -> dict[str, Callable[[Buffer], Any]]:
    hints = ua_binary.get_safe_type_hints(cls, {"ua": ua})
    return {name: ua_binary._create_type_deserializer(hint, cls) for name, hint in hints.items()}


_RESULT = _field_decoders(ua.PublishResult)
_MESSAGE = _field_decoders(ua.NotificationMessage)


def decode_publish_response(buf: Buffer) -> ua.PublishResponse:
    """A ``PublishResponse`` as asyncua's decoder makes it, except that each
    ``DataChangeNotification`` in ``NotificationData`` is a ``DataChanges``."""
    data = buf._data  # asyncua's Buffer: the whole message and a window on it
    start = buf.cur_pos
    if bytes(data[start : start + 4]) != _PUBLISH_RESPONSE:
        return ua_binary.struct_from_binary(ua.PublishResponse, buf)
    b = Buffer(data, start + 4, len(buf) - 4)
    header = ua_binary.struct_from_binary(ua.ResponseHeader, b)
    result = ua.PublishResult(
        SubscriptionId=_RESULT["SubscriptionId"](b),
        AvailableSequenceNumbers=_RESULT["AvailableSequenceNumbers"](b),
        MoreNotifications=_RESULT["MoreNotifications"](b),
    )
    message = ua.NotificationMessage(
        SequenceNumber=_MESSAGE["SequenceNumber"](b), PublishTime=_MESSAGE["PublishTime"](b)
    )
    count = ua_binary.Primitives.Int32.unpack(b)
    notifications: list[Any] = []
    for _ in range(count):
        pos = b.cur_pos
        # TypeId (4 bytes), encoding 0x01 (a binary body follows), body length, body.
        if bytes(data[pos : pos + 4]) == _DATA_CHANGE and data[pos + 4] == 1:
            (length,) = _I32(data, pos + 5)
            if length > 0:
                body = pos + 9
                notifications.append(_data_changes(data, body, body + length))
                b.skip(9 + length)
                continue
        notifications.append(ua_binary.extensionobject_from_binary(b))
    message.NotificationData = notifications
    result.NotificationMessage = message
    result.Results = _RESULT["Results"](b)
    result.DiagnosticInfos = _RESULT["DiagnosticInfos"](b)
    return ua.PublishResponse(ResponseHeader=header, Parameters=result)


async def _lean_publish(
    self: Any, acks: list[ua.SubscriptionAcknowledgement]
) -> ua.PublishResponse:
    """asyncua 2.1.0's ``UaSession.publish`` with ``decode_publish_response``."""
    request = ua.PublishRequest()
    request.Parameters.SubscriptionAcknowledgements = acks if acks else []
    data = await self._send_request(request, timeout=0)
    try:
        return decode_publish_response(data)
    except Exception as ex:
        self.logger.exception("Error parsing notification from server")
        raise UaStructParsingError from ex


def lean_publish(session: Any) -> bool:
    """Decode this session's publish responses with ``decode_publish_response``; whether
    it is in (not on an asyncua version it was not checked against: logged)."""
    if not fastpaths.asyncua_checked():
        log.warning(
            "asyncua %s: lean publish decoding not installed (checked against %s)",
            fastpaths.asyncua_version(),
            ", ".join(fastpaths.ASYNCUA_CHECKED),
        )
        return False
    session.publish = types.MethodType(_lean_publish, session)
    return True
