"""The twin server's fast paths through asyncua's write -> notification path.

Every value the twin writes (``Server.write_attribute_value``) reaches each monitored item
of it through ``MonitoredItemService.datachange_callback``. Two costs there are not the
work of publishing:

- the written ``DataValue`` is deep-copied per monitored item, to compare with the next
  one: ``ImmutableDataValue`` (a DataValue the publisher never mutates) is its own copy;
- asyncua 2.1.0 builds the ``MonitoredItemNotification`` with its default constructor
  first, which builds a throwaway default ``DataValue`` and ``Variant`` (type guessing
  included), then overwrites the value: measured ~27 % of the twin process's CPU at
  10,000 tag changes/s. ``lean_notifications()`` replaces that callback with the same
  logic (same checks, same filter and deadband handling, same queueing) that builds the
  notification once, with its handle and value, and only when it is queued.

- the publish response is encoded by asyncua's generic struct encoder, field by field
  through per-field closures (~6 us per data change notification, ~12 % of the twin
  process at 20,000 tag changes/s): ``lean_notifications()`` also makes each
  ``DataChangeNotification`` for a client's subscription an ``ExtensionObject`` whose
  body is encoded at once with ``struct`` (``encode_data_changes``), the same bytes on
  the wire (tested), asyncua's own encoder for any value that is not a scalar Double.

All keep asyncua's behaviour exactly; ``mestwin bench opcua`` measures the raw ceiling
with and without them, so the product is compared with a bare server that has them too.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from asyncua import Server, ua
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.monitored_item_service import MonitoredItemService
from asyncua.ua.ua_binary import struct_to_binary

import fastpaths

log = logging.getLogger(__name__)


class ImmutableDataValue(ua.DataValue):
    """A ``DataValue`` the publisher never changes after writing it.

    asyncua deep-copies every written value for each monitored item (to compare it with
    the next); for a DataValue with two timestamps that is ~100 us, most of the server's
    cost per notification here. The publisher builds a new DataValue for every write and
    never mutates one, so a copy is the object itself.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> ImmutableDataValue:
        return self


_new = object.__new__
_DOUBLE = ua.VariantType.Double
_NO_ENCODING = ua.Byte(0)


def double_variant(value: float) -> ua.Variant:
    """``ua.Variant(value, ua.VariantType.Double)`` for a float, without the dataclass's
    checks (~0.3 us against ~3 us; one per process value change; tested equal). Its
    fields are set as plain attributes: asyncua 2.1.0's ``Variant`` is neither frozen nor
    has a ``__setattr__`` of its own (``object.__setattr__`` costs twice as much)."""
    variant = _new(_Variant)
    variant.Value = value
    variant.VariantType = _DOUBLE
    variant.Dimensions = None
    variant.is_array = False
    return variant


GOOD = ua.StatusCode()
"""The Good status every value the publisher writes carries (shared: never mutated)."""


def good_value(variant: ua.Variant, source: Any, server: Any) -> ImmutableDataValue:
    """``ImmutableDataValue(Value=variant, SourceTimestamp=source, ServerTimestamp=server)``
    with the shared Good status, without the dataclass's ``__init__`` and its default
    ``StatusCode`` (one per tag change written; ~0.3 us against ~1.5 us; tested equal)."""
    value = _new(ImmutableDataValue)
    value.Encoding = _NO_ENCODING
    value.Value = variant
    value.StatusCode = GOOD
    value.SourceTimestamp = source
    value.ServerTimestamp = server
    value.SourcePicoseconds = None
    value.ServerPicoseconds = None
    return value


_original_callback = MonitoredItemService.datachange_callback
_DISABLED = ua.MonitoringMode.Disabled
_STATUS_VALUE = ua.DataChangeTrigger.StatusValue
_Notification = ua.MonitoredItemNotification


def _changed(old: ua.DataValue | None, current: ua.DataValue | None) -> bool:
    """asyncua 2.1.0's ``_is_data_changed`` for the default trigger (``StatusValue``) of a
    monitored item without a filter, with identity checked first: the publisher shares
    one Good ``StatusCode`` and builds a new ``Variant`` per value."""
    if old is None or current is None:
        return (old is None) != (current is None)
    status, now = old.StatusCode, current.StatusCode
    if status is not now and status != now:
        return True
    before, after = old.Value, current.Value
    if before is after:
        return False
    if type(before) is _Variant and type(after) is _Variant:
        # Variant.__eq__ (which __ne__ negates), inlined.
        return not (before.VariantType == after.VariantType and before.Value == after.Value)
    return bool(before != after)


def _datachange_now(
    self: MonitoredItemService, handle: int, value: ua.DataValue
) -> Awaitable[None] | None:
    """asyncua 2.1.0's ``datachange_callback`` without an error, run now: the notification
    built only when queued, queued as ``InternalSubscription._enqueue_event`` queues it.
    What is left to await (the first notification of a monitored item since the last
    publish, which triggers the publish: asyncua's own ``enqueue_datachange_event``), or
    None when done."""
    mid = self._monitored_datachange[handle]
    mdata = self._monitored_items[mid]
    if mdata.mode == _DISABLED:
        return None
    mvalue = mdata.mvalue
    old = mvalue.current_dvalue
    if type(value) is ImmutableDataValue:  # its deep copy is itself (set_current_datavalue)
        mvalue.old_dvalue = old
        mvalue.current_dvalue = value
    else:
        mvalue.set_current_datavalue(value)
    if mdata.filter:
        passes = self._is_data_changed(mvalue, mdata.filter.Trigger) and self._is_deadband_exceeded(
            mvalue, mdata.filter
        )
    else:
        passes = _changed(old, mvalue.current_dvalue)
    if not passes:
        return None
    note = _new(_Notification)
    note.ClientHandle = mdata.client_handle
    note.Value = value
    isub = self.isub
    queued = isub._triggered_datachanges.get(mid)
    if queued is None:
        return isub.enqueue_datachange_event(mid, note, mdata.queue_size)
    size = mdata.queue_size
    if size != 0 and len(queued) >= size:
        queued.pop(0)
    queued.append(note)
    return None


async def _lean_datachange_callback(
    self: MonitoredItemService,
    handle: int,
    value: ua.DataValue,
    error: ua.StatusCode | None = None,
) -> None:
    """asyncua 2.1.0's ``datachange_callback``, building the notification only when queued."""
    if error:
        await _original_callback(self, handle, value, error)
        return
    pending = _datachange_now(self, handle, value)
    if pending is not None:
        await pending


_I32 = struct.Struct("<i").pack
_HANDLE_MASK = struct.Struct("<IB").pack
_DOUBLE_VALUE = struct.Struct("<Bd").pack
_U32 = struct.Struct("<I").pack
_I64 = struct.Struct("<q").pack
_to_filetime = ua.datetime_to_win_epoch
_DATA_CHANGE_ENCODING = ua.FourByteNodeId(
    ua.Int32(ua.ObjectIds.DataChangeNotification_Encoding_DefaultBinary)
)
_DataValue = ua.DataValue
_Variant = ua.Variant


def encode_data_changes(items: list[ua.MonitoredItemNotification]) -> bytes:
    """The binary body of a ``DataChangeNotification`` of ``items`` (no diagnostics), as
    asyncua 2.1.0's encoder writes it (Part 6, 5.2.2.17 DataValue: the optional fields
    present in its encoding mask, in asyncua's field order), for a DataValue with a scalar
    Double and no picoseconds; any other through asyncua's own encoder."""
    parts = [_I32(len(items))]
    append = parts.append
    times: dict[Any, bytes] = {}
    for item in items:
        dv = item.Value
        variant = dv.Value
        if (
            type(variant) is _Variant
            and variant.VariantType is _DOUBLE
            and not variant.is_array
            and variant.Dimensions is None
            and type(variant.Value) is float
            and dv.SourcePicoseconds is None
            and dv.ServerPicoseconds is None
            and isinstance(dv, _DataValue)
        ):
            status, source, server = dv.StatusCode, dv.SourceTimestamp, dv.ServerTimestamp
            mask = 0x01
            if status is not None:
                mask |= 0x02
            if source is not None:
                mask |= 0x04
            if server is not None:
                mask |= 0x08
            append(_HANDLE_MASK(item.ClientHandle, mask))
            append(_DOUBLE_VALUE(11, variant.Value))
            if status is not None:
                append(_U32(status.value))
            for when in (source, server):
                if when is not None:
                    raw = times.get(when)
                    if raw is None:
                        raw = times[when] = _I64(_to_filetime(when))
                    append(raw)
        else:
            append(struct_to_binary(item))
    append(_I32(0))  # DiagnosticInfos: none
    return b"".join(parts)


_original_pop_datachanges = InternalSubscription._pop_triggered_datachanges


def _lean_pop_datachanges(self: InternalSubscription, result: ua.PublishResult) -> None:
    """asyncua 2.1.0's ``_pop_triggered_datachanges``; for a client's subscription the
    notification goes out encoded already (an ``ExtensionObject`` of the same bytes)."""
    if not self.pub_request_callback:  # the server's own in-process subscription
        _original_pop_datachanges(self, result)
        return
    if self._triggered_datachanges:
        items = [item for sublist in self._triggered_datachanges.values() for item in sublist]
        self._triggered_datachanges = {}
        result.NotificationMessage.NotificationData.append(
            ua.ExtensionObject(
                TypeId=_DATA_CHANGE_ENCODING, Body=ua.ByteString(encode_data_changes(items))
            )
        )


ValueWriter = Callable[[ua.NodeId, ua.DataValue], Awaitable[Any]]
_VALUE = ua.AttributeIds.Value
_NULL = ua.VariantType.Null


def value_target(server: Server, nodeid: ua.NodeId) -> Any | None:
    """The Value attribute of ``nodeid`` that :func:`write_now` writes to, or None when
    its writes must take ``write_attribute_value`` (the fast paths are off, the node is
    unknown or has a value setter)."""
    if not lean_notifications_active():
        return None
    node = server.iserver.aspace._nodes.get(nodeid)
    attval = None if node is None else node.attributes.get(_VALUE)
    if attval is None or attval.value_setter is not None:
        return None
    return attval


def write_now(attval: Any, value: ua.DataValue) -> list[Awaitable[None]] | None:
    """Write ``value`` to ``attval`` (from :func:`value_target`) as asyncua 2.1.0's
    ``write_attribute_value`` does, the data change callbacks run at once; what is left
    to await, in order (usually nothing). None, with nothing done, when the value must
    take ``write_attribute_value``: not a Good status with the variant type the node
    already holds (asyncua's own check, ``_is_expected_variant_type``, accepts exactly
    those; any other goes through it to be refused or stored as it decides), or a data
    change callback that is not the lean one (all are then awaited as asyncua does)."""
    held = attval.value
    status = value.StatusCode
    variant = value.Value
    if (
        status is None
        or status.value != 0
        or variant is None
        or held is None
        or held.Value is None
        or held.Value.VariantType is not variant.VariantType
        or variant.VariantType is _NULL
        or attval.value_setter is not None
    ):
        return None
    callbacks = attval.datachange_callbacks
    for callback in callbacks.values():
        if getattr(callback, "__func__", None) is not _lean_datachange_callback:
            return None
    attval.value = value
    attval.value_callback = None
    left: list[Awaitable[None]] = []
    for handle, callback in callbacks.items():
        try:
            pending = _datachange_now(callback.__self__, handle, value)
        except Exception as ex:
            log.exception("Error calling datachange callback %s, %s, %s", handle, callback, ex)
            continue
        if pending is not None:
            left.append(pending)
    return left


async def await_logged(pending: list[Awaitable[None]]) -> None:
    """Await what :func:`write_now` left, in order, logging what fails (as asyncua does
    for a data change callback)."""
    for awaitable in pending:
        try:
            await awaitable
        except Exception as ex:
            log.exception("Error calling datachange callback: %s", ex)


def value_writer(server: Server) -> ValueWriter:
    """``server.write_attribute_value`` of Value attributes, leaner when the fast paths are in.

    asyncua 2.1.0 looks up the node and its attribute on every write (hashing the NodeId
    twice), checks the status and the variant type, goes through three calls and awaits
    a coroutine per monitored item; a publisher writing the same nodes over and over can
    keep each node's attribute (:func:`value_target`) and write with :func:`write_now`.
    Any other value, a node with a value setter or an unknown node takes
    ``write_attribute_value``. Without ``lean_notifications`` (another asyncua version):
    the server's own.
    """
    slow = server.write_attribute_value
    if not lean_notifications_active():
        return slow
    attributes: dict[ua.NodeId, Any] = {}

    async def write(nodeid: ua.NodeId, value: ua.DataValue) -> Any:
        attval = attributes.get(nodeid)
        if attval is None:
            attval = value_target(server, nodeid)
            if attval is None:
                return await slow(nodeid, value)
            attributes[nodeid] = attval
        left = write_now(attval, value)
        if left is None:
            return await slow(nodeid, value)
        if left:
            await await_logged(left)
        return None

    return write


def lean_notifications() -> bool:
    """Install the lean ``datachange_callback`` and the lean encoding of data changes
    (once, process-wide); whether they are in.

    Only on the asyncua versions they were checked against: on another one asyncua's own
    code stays (slower, never wrong) and this says so in the log.
    """
    if MonitoredItemService.datachange_callback is _lean_datachange_callback:
        return True
    if not fastpaths.asyncua_checked():
        log.warning(
            "asyncua %s: lean data change notifications not installed (checked against %s)",
            fastpaths.asyncua_version(),
            ", ".join(fastpaths.ASYNCUA_CHECKED),
        )
        return False
    MonitoredItemService.datachange_callback = _lean_datachange_callback  # type: ignore[method-assign]
    InternalSubscription._pop_triggered_datachanges = _lean_pop_datachanges  # type: ignore[method-assign]
    return True


def lean_notifications_active() -> bool:
    return MonitoredItemService.datachange_callback is _lean_datachange_callback


def plain_notifications() -> None:
    """Put asyncua's own ``datachange_callback`` and encoding back (benchmarks compare)."""
    MonitoredItemService.datachange_callback = _original_callback  # type: ignore[method-assign]
    InternalSubscription._pop_triggered_datachanges = _original_pop_datachanges  # type: ignore[method-assign]
