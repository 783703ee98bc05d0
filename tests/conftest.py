"""How the suite shares its workers when it runs in parallel (``make pytest``:
``pytest -n 2 --dist loadgroup``, pytest-xdist).

Each test is a unit of work of its own, handed to whichever worker is free, except where
tests share something expensive to build, which a worker builds for itself:

- a module-scoped fixture (a served plant, a Tryton server, a MES per backend): the
  module's tests stay together (one group per module), so it is built once;
- a session fixture of a folder in :data:`SHARED_FOLDERS` (the dashboards' MES filled
  with a day of data, headless Chromium): the tests using one stay together.

Other session fixtures (one MES API per backend in ``tests/mes_core`` and
``tests/mes_quality``) are cheap enough to build once per worker. Tests marked ``slow``
are handed out first, so that no long test starts when the others are done.

A test that must run with others can still name its group: ``@pytest.mark.xdist_group``.
Without ``--dist loadgroup`` (a plain ``pytest``) nothing here changes anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Folders whose tests share session fixtures too costly to build on every worker.
SHARED_FOLDERS = ("tests/dashboards",)

_PER_MODULE = frozenset({"module", "package", "class"})


def _group(item: pytest.Item, root: Path) -> str | None:
    """The group ``item`` must run in, if any (see the module's docstring)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    used = [d[-1] for d in info.name2fixturedefs.values() if d]
    for fixture in used:
        if fixture.scope == "session" and fixture.baseid in SHARED_FOLDERS:
            return fixture.baseid
    if any(fixture.scope in _PER_MODULE for fixture in used):
        return item.path.relative_to(root).as_posix()
    return None


def _named(mark: pytest.Mark) -> str:
    """The group an ``xdist_group`` mark names (as xdist reads it)."""
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("dist", "no") != "loadgroup":
        return
    groups: dict[int, str] = {}
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        group = _group(item, config.rootpath) if mark is None else _named(mark)
        if group is None:
            continue
        groups[id(item)] = group
        if mark is None:
            item.add_marker(pytest.mark.xdist_group(group))
    slow_groups = {groups[id(i)] for i in items if id(i) in groups and i.get_closest_marker("slow")}

    def later(item: pytest.Item) -> bool:
        group = groups.get(id(item))
        slow = group in slow_groups if group else item.get_closest_marker("slow") is not None
        return not slow

    # A stable sort: otherwise in the order collected, a group's tests in theirs.
    items.sort(key=later)
