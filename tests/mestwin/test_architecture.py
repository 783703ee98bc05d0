"""The package boundaries of PRODUCT.md ("Packages"), checked on every import statement.

The twin, the dashboards and the load tests reach the MES only through its public API:
``mes_core.client`` and the wire schemas it returns (``mes_core.schemas`` and the
``schemas`` module of each MES function). The MES knows nothing of the twin, so that it can
face a real plant, and the twin nothing of the MES's internals, so that another MES can
stand in its place.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = (
    "mestwin",
    "mes_core",
    "twin",
    "plant_models",
    "dashboards",
    "loadtests",
    "sparkplug_b",
    "fastpaths",
    "mestwin_tryton",
)
MES_PUBLIC = ("mes_core.client", "mes_core.schemas")
# Every part registers its commands with the front door; it names only its type.
FRONT_DOOR = "mestwin.cli"

# Files allowed past the boundary, each with the reason. Keep this list short.
EXCEPTIONS: dict[str, str] = {
    "twin/opcua/bench_raw.py": (
        "the OPC UA raw ceiling's client decodes with the connector's lean publish decoder, "
        "as the product's connector does, so that the ratio compares pipes with the same "
        "fast paths on both ends"
    ),
    "twin/bench.py": (
        "`bench sim --write` puts its part in this machine's section of docs/BENCHMARKS.md, "
        "whose layout (one section per kind of machine) loadtests.bench.result owns for "
        "every benchmark; imported inside write_section only"
    ),
    "loadtests/bench/ingest.py": (
        "the ingest benchmark's phase breakdown profiles the MES's ingest in process, "
        "beside the product figure it measures over HTTP"
    ),
}

# package -> project packages (or module prefixes) it may import besides itself
ALLOWED: dict[str, tuple[str, ...]] = {
    # sparkplug_b is the Sparkplug B protocol (payload schema, topics), shared by the
    # twin's edge nodes and the MES's host application as asyncua is by OPC UA ends.
    # fastpaths is what the OPC UA fast paths of both ends share: the asyncua versions
    # they were checked against and the collector thresholds (issue 18).
    "mes_core": ("sparkplug_b", "fastpaths"),
    "plant_models": (),
    "sparkplug_b": (),
    "fastpaths": (),
    "twin": (*MES_PUBLIC, "plant_models", "sparkplug_b", "fastpaths"),
    "dashboards": MES_PUBLIC,
    "loadtests": (*MES_PUBLIC, "twin", "plant_models", "fastpaths"),
    # The Tryton adapter is shipped as a third party would ship one: it implements the
    # scenario runner's seam (twin.scenario.sut, and the Records shape of
    # twin.scenario.reconcile) over Tryton's JSON-RPC, reads plant models for master data,
    # and its OPC UA collector reuses two pure pieces any gateway for the twin's
    # information model needs (browsing WorkUnitType instances, notifications to plant
    # events: cumulative counters to deltas cut at job changes) instead of copying them.
    # It never imports mes_core's MES (nor its client).
    "mestwin_tryton": (
        "mes_core.schemas",
        "twin.scenario.sut",
        "twin.scenario.reconcile",
        "plant_models",
        "mes_core.connectors.opcua.discovery",
        "mes_core.connectors.opcua.events",
        "mes_core.connectors.opcua.mapping",
    ),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def _is_public_mes(module: str) -> bool:
    parts = module.split(".")
    return any(module == p or module.startswith(p + ".") for p in MES_PUBLIC) or (
        len(parts) >= 3 and parts[0] == "mes_core" and parts[2] == "schemas"
    )


def _allowed(package: str, module: str) -> bool:
    top = module.split(".")[0]
    if top not in PROJECT or top == package or module.startswith(FRONT_DOOR):
        return True
    if top == "mes_core" and "." not in module:
        return True  # the bare name; what is taken from it is checked as module.name
    if top == "mes_core" and _is_public_mes(module):
        return any(_is_public_mes(a) for a in ALLOWED[package] if a.startswith("mes_core"))
    return any(module == a or module.startswith(a + ".") for a in ALLOWED[package])


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_product_md_allows(package: str) -> None:
    violations = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in EXCEPTIONS
        for line, module in _imports(path)
        if not _allowed(package, module)
    ]
    assert not violations, "\n".join(violations)
