"""The MES as a child process the runner can start, kill and start again.

``mestwin serve`` in its own process group, so that a Ctrl-C in the runner's terminal
reaches the runner only and a "MES killed" fault is a real SIGKILL of the whole group.
The launcher lives with the MES's client (``mes_core.client.local``), since the dashboards'
and load tests' benchmarks start a local MES the same way.
"""

from __future__ import annotations

from mes_core.client.local import LocalMes as MesProcess
from mes_core.client.local import free_port, mestwin_command

__all__ = ["MesProcess", "free_port", "mestwin_command"]
