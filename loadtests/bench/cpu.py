"""CPU seconds spent by the processes under test, a figure less bound to the load of a
shared machine than latencies: a server's process tree, a PostgreSQL database's backends."""

from __future__ import annotations

import psutil


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its descendants alive now."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in (root, *root.children(recursive=True)):
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
    except psutil.Error:
        return 0.0
    return total


def postgres_cpu_seconds(database: str) -> float:
    """User + system CPU seconds of the PostgreSQL backends connected to ``database``
    (their process titles name it: ``postgres: user database host(port) state``)."""
    total = 0.0
    marker = f" {database} "
    for proc in psutil.process_iter(["cmdline"]):
        try:
            title = " ".join(proc.info["cmdline"] or ())
            if title.startswith("postgres:") and marker in title:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total
