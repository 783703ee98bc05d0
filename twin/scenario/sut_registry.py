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
the required methods and that each optional capability is implemented whole or not at all
(:func:`adapter_problems`: a run does not start with half a capability), and asks for the
optional ones (``twin.scenario.sut.capabilities``).

The bench's own adapters are found even when the package's entry points are not installed
(an editable checkout whose metadata predates them).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module, metadata
from typing import Any

from twin.scenario.sut import CAPABILITIES, MesStartError, SutEnvironment, SystemUnderTest

ENTRY_POINT_GROUP = "mestwin.sut_adapters"
BUILT_IN = {
    "mes_core": "twin.scenario.mes_core_launch:open_mes_core",
    "tryton": "mestwin_tryton.launch:open_tryton",
}
"""The bench's own adapters (also registered as entry points in pyproject.toml)."""

AdapterFactory = Callable[[dict[str, Any], SutEnvironment], SystemUnderTest]


class UnknownAdapter(LookupError):
    """No adapter of that name is installed."""


class NotAnAdapter(MesStartError, TypeError):
    """What a factory returned lacks a required method of ``SystemUnderTest``, or has
    part of an optional capability only: the run cannot start (exit 1, the message
    printed)."""


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


def _methods(protocol: type) -> list[str]:
    """The methods a Protocol declares (its public callables), sorted."""
    return sorted(
        n for n in dir(protocol) if not n.startswith("_") and callable(getattr(protocol, n))
    )


def required_missing(sut: object) -> list[str]:
    """The methods of ``SystemUnderTest`` that ``sut`` does not have."""
    return [n for n in _methods(SystemUnderTest) if not callable(getattr(sut, n, None))]


def partial_capabilities(sut: object) -> dict[str, list[str]]:
    """Optional capabilities ``sut`` has only part of: capability -> the methods it lacks
    (absent, or present but not callable). ``isinstance`` on a runtime-checkable Protocol
    would call such an adapter capable when every name is there, or silently treat it as
    lacking the capability when one is absent; either way the run would fail mid-way or
    report as not checked what the adapter's author meant to offer."""
    out: dict[str, list[str]] = {}
    for name, (protocol, _) in CAPABILITIES.items():
        methods = _methods(protocol)
        lacking = [m for m in methods if not callable(getattr(sut, m, None))]
        has_some = any(hasattr(sut, m) for m in methods)
        if lacking and has_some:
            out[name] = lacking
    return out


def adapter_problems(adapter: str, sut: object) -> str | None:
    """Why what adapter ``adapter``'s factory returned cannot be used, or None: the
    required methods it lacks and the optional capabilities it has only part of, each
    named with the methods missing."""
    problems = []
    lacking = required_missing(sut)
    if lacking:
        problems.append(f"lacks the required {', '.join(lacking)} of SystemUnderTest")
    for capability, methods in partial_capabilities(sut).items():
        protocol = CAPABILITIES[capability][0].__name__
        problems.append(
            f"implements only part of the optional capability {capability} ({protocol}): "
            f"missing or not callable: {', '.join(methods)} (implement all of "
            f"{', '.join(_methods(CAPABILITIES[capability][0]))}, or none)"
        )
    if not problems:
        return None
    return (
        f"adapter {adapter!r} returned {type(sut).__name__}, which "
        + "; and ".join(problems)
        + " (twin/scenario/sut.py)"
    )
