"""The Sparkplug topic namespace (spec 3.0, 4.1) and the host application's STATE (4.2).

``spBv1.0/<group_id>/<message_type>/<edge_node_id>[/<device_id>]`` for edge nodes and
devices; ``spBv1.0/STATE/<host_id>`` (retained, QoS 1, JSON ``{"online", "timestamp"}``)
for a primary host application.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

NAMESPACE = "spBv1.0"
NODE_TYPES = ("NBIRTH", "NDEATH", "NDATA", "NCMD")
DEVICE_TYPES = ("DBIRTH", "DDEATH", "DDATA", "DCMD")
REBIRTH = "Node Control/Rebirth"
"""The node control metric a host sets true in an NCMD to ask for births (6.4.18)."""
BD_SEQ = "bdSeq"
"""The birth/death sequence metric of NBIRTH and NDEATH (6.4.17)."""

_ID_FORBIDDEN = ("/", "+", "#")


class TopicError(ValueError):
    """A topic or identifier that the Sparkplug namespace does not allow."""


def check_id(kind: str, value: str) -> str:
    """A group, edge node, device or host id: non-empty, without ``/``, ``+``, ``#``."""
    if not value or any(c in value for c in _ID_FORBIDDEN):
        raise TopicError(f"{kind} {value!r}: must be non-empty, without '/', '+' or '#'")
    return value


@dataclass(frozen=True)
class Topic:
    group: str
    message_type: str
    edge_node: str
    device: str | None = None

    def __str__(self) -> str:
        base = f"{NAMESPACE}/{self.group}/{self.message_type}/{self.edge_node}"
        return base if self.device is None else f"{base}/{self.device}"

    @classmethod
    def parse(cls, topic: str) -> Topic:
        parts = topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
            raise TopicError(f"topic {topic!r}: not spBv1.0/GROUP/TYPE/NODE[/DEVICE]")
        kind = parts[2]
        if kind in NODE_TYPES and len(parts) == 4:
            return cls(parts[1], kind, parts[3])
        if kind in DEVICE_TYPES and len(parts) == 5:
            return cls(parts[1], kind, parts[3], parts[4])
        raise TopicError(f"topic {topic!r}: message type {kind!r} does not fit its levels")


def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/STATE/{check_id('host id', host_id)}"


def state_payload(online: bool, timestamp_ms: int) -> bytes:
    """A primary host's STATE message body (spec 3.0, 7.2: JSON, UTF-8)."""
    return json.dumps({"online": online, "timestamp": timestamp_ms}).encode()


def parse_state(body: bytes) -> tuple[bool, int]:
    """(online, timestamp) of a STATE message; ``ValueError`` naming what is wrong."""
    try:
        data = json.loads(body)
        return bool(data["online"]), int(data["timestamp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"STATE message {body[:80]!r}: {exc}") from None
