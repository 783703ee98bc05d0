"""Finding a scenario's system-under-test adapter by name: the plug-in seam.

A scenario names its adapter (``system_under_test: {adapter: NAME, ...settings}``, default
``mes_core``). Adapters register under the Python entry point group ``mestwin.sut_adapters``
(``[project.entry-points."mestwin.sut_adapters"] NAME = "package.module:factory"``), so a
third party ships one as its own package without touching the bench. The object named is a
factory ``factory(settings, env) -> SystemUnderTest``: ``settings`` are the scenario's
``system_under_test`` entries but ``adapter`` (raise
:class:`~twin.scenario.sut.SutSettingsError` naming the bad one), ``env`` the
:class:`~twin.scenario.sut.SutEnvironment`. The factory starts (or reaches) the MES and
returns an adapter that answers; ``close()`` stops what it started. The runner then checks
the required methods (:func:`required_missing`) and asks for the optional ones
(``twin.scenario.sut.capabilities``).

The bench's own adapters are found even when the package's entry points are not installed
(an editable checkout whose metadata predates them).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module, metadata
from typing import Any

from twin.scenario.sut import SutEnvironment, SystemUnderTest

ENTRY_POINT_GROUP = "mestwin.sut_adapters"
BUILT_IN = {
    "mes_core": "twin.scenario.mes_core_launch:open_mes_core",
    "tryton": "mestwin_tryton.launch:open_tryton",
}
"""The bench's own adapters (also registered as entry points in pyproject.toml)."""

AdapterFactory = Callable[[dict[str, Any], SutEnvironment], SystemUnderTest]


class UnknownAdapter(LookupError):
    """No adapter of that name is installed."""


class NotAnAdapter(TypeError):
    """What a factory returned lacks a required method of ``SystemUnderTest``."""


def adapter_names() -> list[str]:
    """Every adapter name this environment knows, sorted."""
    names = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names | set(BUILT_IN))


def resolve(name: str) -> AdapterFactory:
    """The factory registered as ``name``; :class:`UnknownAdapter` naming the known ones."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory: AdapterFactory = ep.load()
            return factory
    if name in BUILT_IN:
        module, _, attr = BUILT_IN[name].partition(":")
        built_in: AdapterFactory = getattr(import_module(module), attr)
        return built_in
    raise UnknownAdapter(
        f"no system-under-test adapter {name!r} is installed (known: "
        f"{', '.join(adapter_names())}; a package registers one under the entry point "
        f"group {ENTRY_POINT_GROUP})"
    )


def required_missing(sut: object) -> list[str]:
    """The methods of ``SystemUnderTest`` that ``sut`` does not have."""
    required = [
        n
        for n in dir(SystemUnderTest)
        if not n.startswith("_") and callable(getattr(SystemUnderTest, n))
    ]
    return [n for n in required if not callable(getattr(sut, n, None))]
