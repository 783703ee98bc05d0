"""mestwin adapter for Tryton 8.2: a second, independent MES under test.

Shipped as its own top-level package, as a third party would ship an adapter: it drives
Tryton only through its JSON-RPC API (``/<database>/rpc/``), and it collects equipment
traffic with its own OPC UA subscription to the twin's server, as any gateway would
(Tryton has no OPC UA client). Install with ``pip install -e '.[tryton]'``.

- ``server``: start a ``trytond`` for a run (SQLite), its database created with the
  production modules by ``trytond-admin`` (a template per Tryton version, copied per run).
- ``rpc``: the JSON-RPC client (login, calls, Tryton's typed errors).
- ``masterdata``: the plant model's master data, loaded through RPC.
- ``collector``: the OPC UA subscription that turns PackML counters into Tryton records.
- ``adapter``: ``TrytonSut``, the ``SystemUnderTest`` of the scenario runner.
"""
