"""The connector's lean decoding of publish responses (``connectors.opcua.publish``) gives
what asyncua's own decoder gives, for every kind of value, notification and response
(OPC UA Part 6, 5.2.2: DataValue, Variant, ExtensionObject), and is used only on the
asyncua versions it was checked against."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asyncua import ua
from asyncua.common.subscription import SubscriptionItemData
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

import fastpaths
from mes_core.connectors.opcua import publish
from mes_core.connectors.opcua.connector import BufferedSubscription, _Buffer
from mes_core.connectors.opcua.publish import DataChanges, data_changes, decode_publish_response

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)


def _dv(value: ua.Variant | None, **kw: Any) -> ua.DataValue:
    return ua.DataValue(Value=value, **kw)


def _items() -> list[ua.MonitoredItemNotification]:
    """One notification of every kind of value and DataValue shape."""
    both = {"SourceTimestamp": T0, "ServerTimestamp": T0 + timedelta(seconds=1)}
    values: list[ua.DataValue] = [
        _dv(ua.Variant(21.5, ua.VariantType.Double), **both),
        _dv(ua.Variant(-7, ua.VariantType.Int32), **both),
        _dv(ua.Variant(4_000_000_000, ua.VariantType.UInt32), SourceTimestamp=T0),
        _dv(ua.Variant(2**40, ua.VariantType.Int64), ServerTimestamp=T0),
        _dv(ua.Variant(2**63, ua.VariantType.UInt64)),
        _dv(ua.Variant(1.25, ua.VariantType.Float), **both),
        _dv(ua.Variant(True, ua.VariantType.Boolean), **both),
        _dv(ua.Variant(-3, ua.VariantType.SByte), **both),
        _dv(ua.Variant(200, ua.VariantType.Byte), **both),
        _dv(ua.Variant(-300, ua.VariantType.Int16), **both),
        _dv(ua.Variant(60_000, ua.VariantType.UInt16), **both),
        _dv(ua.Variant("JO-0001 Füllung", ua.VariantType.String), **both),
        _dv(ua.Variant("", ua.VariantType.String), **both),
        _dv(ua.Variant(None, ua.VariantType.String), **both),
        _dv(ua.Variant(None, ua.VariantType.Null), **both),
        _dv(None, StatusCode=ua.StatusCode(ua.UInt32(ua.StatusCodes.BadNodeIdUnknown)), **both),
        _dv(ua.Variant(5, ua.VariantType.Int32), StatusCode=ua.StatusCode(ua.UInt32(0x00A80000))),
        _dv(ua.Variant([1.0, 2.0], ua.VariantType.Double), **both),
        _dv(ua.Variant([[1, 2], [3, 4]], ua.VariantType.Int32, [ua.Int32(2), ua.Int32(2)]), **both),
        _dv(ua.Variant(ua.LocalizedText("jam", "en"), ua.VariantType.LocalizedText), **both),
        _dv(ua.Variant(T0, ua.VariantType.DateTime), **both),
        _dv(ua.Variant(3.5, ua.VariantType.Double), SourcePicoseconds=7, **both),
        _dv(ua.Variant(4.5, ua.VariantType.Double), ServerPicoseconds=9, ServerTimestamp=T0),
        _dv(ua.Variant(9.0, ua.VariantType.Double)),
    ]
    return [
        ua.MonitoredItemNotification(ClientHandle=100 + i, Value=v) for i, v in enumerate(values)
    ]


def _event_list() -> ua.EventNotificationList:
    fields = [ua.Variant("LA-FILL", ua.VariantType.String), ua.Variant(500, ua.VariantType.UInt16)]
    return ua.EventNotificationList(Events=[ua.EventFieldList(ClientHandle=7, EventFields=fields)])


def _response(notifications: list[Any], **result: Any) -> bytes:
    message = ua.NotificationMessage(
        SequenceNumber=42, PublishTime=T0, NotificationData=notifications
    )
    params = ua.PublishResult(SubscriptionId=3, NotificationMessage=message, **result)
    header = ua.ResponseHeader(Timestamp=T0, RequestHandle=17)
    return struct_to_binary(ua.PublishResponse(ResponseHeader=header, Parameters=params))


def _decode_both(raw: bytes) -> tuple[ua.PublishResponse, ua.PublishResponse]:
    # The session hands over a window on the whole message, after its own headers.
    lean = decode_publish_response(Buffer(b"\x00" * 24 + raw + b"\xff" * 8, 24, len(raw)))
    return lean, struct_from_binary(ua.PublishResponse, Buffer(raw))


def _assert_same(lean: ua.PublishResponse, plain: ua.PublishResponse) -> None:
    assert lean.ResponseHeader == plain.ResponseHeader
    a, b = lean.Parameters, plain.Parameters
    assert (a.SubscriptionId, a.AvailableSequenceNumbers, a.MoreNotifications) == (
        b.SubscriptionId,
        b.AvailableSequenceNumbers,
        b.MoreNotifications,
    )
    assert (a.Results, a.DiagnosticInfos) == (b.Results, b.DiagnosticInfos)
    am, bm = a.NotificationMessage, b.NotificationMessage
    assert (am.SequenceNumber, am.PublishTime) == (bm.SequenceNumber, bm.PublishTime)
    assert len(am.NotificationData) == len(bm.NotificationData)
    for mine, theirs in zip(am.NotificationData, bm.NotificationData, strict=True):
        if isinstance(theirs, ua.DataChangeNotification):
            assert isinstance(mine, DataChanges)
            expected = data_changes(theirs)  # asyncua's decoding, as the connector reads it
            assert expected is not None and mine.items == expected
            for (_, value, when), (_, v2, w2) in zip(mine.items, expected, strict=True):
                assert type(value) is type(v2) and type(when) is type(w2)
        else:
            assert mine == theirs


def test_every_kind_of_data_value_decodes_as_asyncua_decodes_it() -> None:
    raw = _response([ua.DataChangeNotification(MonitoredItems=_items())])
    lean, plain = _decode_both(raw)
    _assert_same(lean, plain)
    (changes,) = lean.Parameters.NotificationMessage.NotificationData
    assert changes.items[0] == (100, 21.5, T0)
    assert changes.items[3][2] == T0  # no source timestamp: the server's
    assert changes.items[4] == (104, 2**63, None)  # no timestamp at all
    assert changes.items[11][1] == "JO-0001 Füllung"
    assert changes.items[15][1] is None  # a bad status without a value


def test_events_status_changes_and_diagnostics_decode_as_asyncua_decodes_them() -> None:
    diagnostics = [ua.DiagnosticInfo(SymbolicId=ua.Int32(5), AdditionalInfo=ua.String("why"))]
    notifications = [
        ua.DataChangeNotification(MonitoredItems=_items()[:3], DiagnosticInfos=diagnostics),
        _event_list(),
        ua.StatusChangeNotification(Status=ua.StatusCode(ua.UInt32(ua.StatusCodes.BadTimeout))),
        ua.DataChangeNotification(MonitoredItems=_items()[3:]),
        ua.DataChangeNotification(MonitoredItems=[]),
    ]
    raw = _response(
        notifications,
        AvailableSequenceNumbers=[40, 41, 42],
        MoreNotifications=True,
        Results=[
            ua.StatusCode(ua.UInt32(ua.StatusCodes.Good)),
            ua.StatusCode(ua.UInt32(ua.StatusCodes.BadSequenceNumberUnknown)),
        ],
        DiagnosticInfos=diagnostics,
    )
    _assert_same(*_decode_both(raw))


def test_a_keep_alive_without_notifications_decodes_as_asyncua_decodes_it() -> None:
    _assert_same(*_decode_both(_response([])))


def test_a_truncated_data_change_is_an_error_not_a_short_list() -> None:
    raw = bytearray(_response([ua.DataChangeNotification(MonitoredItems=_items()[:2])]))
    body = raw.find(b"\x01\x00\x2b\x03\x01") + 5
    raw[body : body + 4] = (int.from_bytes(raw[body : body + 4], "little") - 6).to_bytes(
        4, "little"
    )
    with pytest.raises(Exception):  # noqa: B017 (asyncua raises its own kinds here too)
        decode_publish_response(Buffer(bytes(raw)))


def _subscription(buffer: _Buffer) -> BufferedSubscription:
    sub = BufferedSubscription.__new__(BufferedSubscription)
    sub.buffer, sub.url = buffer, "opc.tcp://test"
    # What __init__ (BufferedSubscription's and asyncua's) would have set.
    sub.connects, sub._latest, sub._gap, sub.last_sequence_number = 1, None, False, None
    sub._monitored_items = {}
    for m in _items():
        data = SubscriptionItemData()
        data.node = type(
            "N", (), {"nodeid": ua.NodeId(ua.String(f"tag{m.ClientHandle}"), ua.Int16(2))}
        )()
        sub._monitored_items[m.ClientHandle] = data
    return sub


def test_the_subscription_buffers_the_same_items_from_either_decoding() -> None:
    """On another asyncua version the subscription gets asyncua's own notifications: it
    buffers the same (NodeId, value, timestamp) items from them."""
    raw = _response([ua.DataChangeNotification(MonitoredItems=_items()), _event_list()])
    buffers = []
    for response in _decode_both(raw):
        buffer = _Buffer()
        sub = _subscription(buffer)
        sub._explode_events = lambda n: []  # type: ignore[method-assign, assignment]
        asyncio.run(sub.publish_callback(response.Parameters))
        buffers.append(buffer.items)
    lean, plain = buffers
    assert lean == plain and len(lean) == len(_items())


class _Session:
    async def publish(self, acks: list[Any]) -> str:
        return "asyncua's own"


def test_lean_publish_is_installed_per_session_on_checked_asyncua_versions_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked, other = _Session(), _Session()
    assert publish.lean_publish(checked)
    assert checked.publish.__func__ is publish._lean_publish  # type: ignore[attr-defined]
    assert _Session.publish is not publish._lean_publish  # not process-wide
    monkeypatch.setattr(fastpaths, "asyncua_version", lambda: "9.9.9")
    assert not publish.lean_publish(other)
    assert asyncio.run(other.publish([])) == "asyncua's own"
