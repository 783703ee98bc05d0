"""The twin server's lean encoding of data changes (``twin.opcua.fastpath``) writes the
bytes asyncua's encoder writes (OPC UA Part 6, 5.2.2.17 DataValue, 5.2.6 ExtensionObject),
and is installed only on the asyncua versions it was checked against."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asyncua import Server, ua
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.monitored_item_service import MonitoredItemService, MonitoredItemValues
from asyncua.ua.ua_binary import struct_to_binary

import fastpaths
from twin.opcua import fastpath
from twin.opcua.bench_raw import free_port
from twin.opcua.fastpath import ImmutableDataValue, double_variant, encode_data_changes

T0: Any = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)  # asyncua types it ua.DateTime


def _items() -> list[ua.MonitoredItemNotification]:
    later = T0 + timedelta(milliseconds=250)
    values: list[ua.DataValue] = [
        ImmutableDataValue(Value=double_variant(21.5), SourceTimestamp=T0, ServerTimestamp=later),
        ImmutableDataValue(Value=double_variant(-0.0), SourceTimestamp=T0, ServerTimestamp=later),
        ua.DataValue(Value=ua.Variant(1e300, ua.VariantType.Double), SourceTimestamp=later),
        ua.DataValue(Value=ua.Variant(3.5, ua.VariantType.Double), ServerTimestamp=T0),
        ua.DataValue(Value=ua.Variant(4.5, ua.VariantType.Double), StatusCode=None),
        ua.DataValue(
            Value=ua.Variant(5.5, ua.VariantType.Double),
            StatusCode=ua.StatusCode(ua.UInt32(0x00A80000)),
            SourceTimestamp=T0,
        ),
        ua.DataValue(Value=ua.Variant(7, ua.VariantType.Int32), SourceTimestamp=T0),
        ua.DataValue(Value=ua.Variant("Jam at infeed", ua.VariantType.String)),
        ua.DataValue(Value=ua.Variant([1.0, 2.0], ua.VariantType.Double), SourceTimestamp=T0),
        ua.DataValue(Value=ua.Variant(6.5, ua.VariantType.Double), SourcePicoseconds=ua.UInt16(5)),
        ua.DataValue(StatusCode=ua.StatusCode(ua.UInt32(ua.StatusCodes.BadNodeIdUnknown))),
        ua.DataValue(Value=ua.Variant(2, ua.VariantType.Double)),  # an int in a Double variant
    ]
    return [
        ua.MonitoredItemNotification(ClientHandle=ua.UInt32(10 + i), Value=v)
        for i, v in enumerate(values)
    ]


def test_data_changes_are_encoded_as_asyncua_encodes_them() -> None:
    items = _items()
    assert encode_data_changes(items) == struct_to_binary(
        ua.DataChangeNotification(MonitoredItems=items)
    )
    assert encode_data_changes([]) == struct_to_binary(ua.DataChangeNotification())


def test_a_publish_response_carries_the_same_bytes_either_way() -> None:
    def response(notification: object) -> bytes:
        message = ua.NotificationMessage(
            SequenceNumber=ua.UInt32(7), PublishTime=T0, NotificationData=[notification]
        )
        result = ua.PublishResult(SubscriptionId=ua.UInt32(1), NotificationMessage=message)
        header = ua.ResponseHeader(Timestamp=T0, RequestHandle=ua.UInt32(3))
        return struct_to_binary(ua.PublishResponse(ResponseHeader=header, Parameters=result))

    items = _items()
    lean = ua.ExtensionObject(
        TypeId=fastpath._DATA_CHANGE_ENCODING, Body=ua.ByteString(encode_data_changes(items))
    )
    assert response(lean) == response(ua.DataChangeNotification(MonitoredItems=items))


def test_the_fast_paths_are_installed_only_on_checked_asyncua_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    was = fastpath.lean_notifications_active()
    try:
        fastpath.plain_notifications()
        monkeypatch.setattr(fastpaths, "asyncua_version", lambda: "9.9.9")
        assert not fastpath.lean_notifications()
        assert MonitoredItemService.datachange_callback is fastpath._original_callback
        pop = InternalSubscription._pop_triggered_datachanges
        assert pop is fastpath._original_pop_datachanges
        monkeypatch.undo()
        assert fastpath.lean_notifications()
        assert InternalSubscription._pop_triggered_datachanges is fastpath._lean_pop_datachanges
        fastpath.plain_notifications()
        assert InternalSubscription._pop_triggered_datachanges is fastpath._original_pop_datachanges
    finally:
        if was:
            fastpath.lean_notifications()


def test_the_lean_writer_stores_and_notifies_what_asyncua_would_and_refuses_what_it_refuses() -> (
    None
):
    """``value_writer``: a Good value of the node's variant type is stored and reaches a
    subscriber; a value of another type is refused and a Bad status nulls the value, as
    ``write_attribute_value`` does; without the fast paths it is asyncua's own."""

    async def go() -> tuple[list[Any], list[Any]]:
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{free_port()}")
        ns = await server.register_namespace("urn:test:fastpath")
        node = await server.nodes.objects.add_variable(ns, "V", 1.0, ua.VariantType.Double)
        seen: list[Any] = []

        class Handler:
            def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
                seen.append(val)

        async with server:
            sub = await server.create_subscription(10, Handler())
            await sub.subscribe_data_change(node)
            write = fastpath.value_writer(server)
            assert write != server.write_attribute_value  # the lean one
            stored = []
            for value in (
                ImmutableDataValue(Value=double_variant(2.5), SourceTimestamp=T0),
                ua.DataValue(Value=ua.Variant(7, ua.VariantType.Int32)),  # wrong type
                ua.DataValue(Value=ua.Variant(3.5, ua.VariantType.Double)),
                ua.DataValue(StatusCode=ua.StatusCode(ua.UInt32(ua.StatusCodes.BadOutOfRange))),
            ):
                await write(node.nodeid, value)
                held = (await node.read_data_value(raise_on_bad_status=False)).Value
                stored.append(None if held is None else held.Value)
                await asyncio.sleep(0.05)
            await sub.delete()
            fastpath.plain_notifications()
            try:
                assert fastpath.value_writer(server) == server.write_attribute_value
            finally:
                fastpath.lean_notifications()
        return stored, seen

    assert fastpath.lean_notifications()
    stored, seen = asyncio.run(go())
    assert stored == [2.5, 2.5, 3.5, None]
    assert seen == [1.0, 2.5, 3.5, None]


def test_the_publishers_values_are_the_data_values_asyncua_builds() -> None:
    variant = double_variant(21.5)
    fast = fastpath.good_value(variant, T0, T0 + timedelta(seconds=1))
    built = ImmutableDataValue(
        Value=variant, SourceTimestamp=T0, ServerTimestamp=T0 + timedelta(seconds=1)
    )
    assert fast == built and type(fast) is ImmutableDataValue
    assert struct_to_binary(fast) == struct_to_binary(built)
    assert (fast.Encoding, fast.SourcePicoseconds, fast.ServerPicoseconds) == (0, None, None)


def test_a_change_is_detected_as_asyncua_detects_it() -> None:
    """``_changed`` is asyncua's ``_is_data_changed`` for the default trigger: the same
    answer for every pair of old and new value (identity, status, variant type, value)."""
    same = double_variant(1.0)
    values: list[Any] = [
        None,
        fastpath.good_value(same, T0, T0),
        fastpath.good_value(same, T0 + timedelta(seconds=1), T0),  # same variant object
        fastpath.good_value(double_variant(1.0), T0, T0),  # equal value, another object
        fastpath.good_value(double_variant(2.0), T0, T0),
        ua.DataValue(Value=ua.Variant(1, ua.VariantType.Int32)),
        ua.DataValue(Value=ua.Variant(1.0, ua.VariantType.Double)),
        ua.DataValue(StatusCode=ua.StatusCode(ua.UInt32(ua.StatusCodes.BadOutOfRange))),
    ]
    trigger = ua.DataChangeTrigger.StatusValue
    for old in values:
        for new in values:
            mvalue = MonitoredItemValues()
            mvalue.old_dvalue, mvalue.current_dvalue = old, new
            expected = MonitoredItemService._is_data_changed(mvalue, trigger)
            assert fastpath._changed(old, new) == expected, (old, new)
