"""Sparkplug B 3.0 (Eclipse Sparkplug Specification 3.0.0): the protocol's types, no I/O.

The payload schema (Eclipse Tahu's ``sparkplug_b.proto``), the topic namespace and the
primary host ``STATE`` message, shared by the twin's edge nodes (``twin.sparkplug``) and
the MES's host application (``mes_core.connectors.sparkplug``) the way asyncua's ``ua``
types are shared by an OPC UA server and its clients: a protocol stack, not a part of
either side. It imports nothing of the project.
"""
