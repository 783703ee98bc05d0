"""What one run shares between its parts: the options, the loaded scenario and plant, the
clock settings, and the objects each part builds (system under test, twin, link, people).

Each part of a run has a module of its own and reads or fills this context; none of them
knows which MES it drives (that is the system-under-test adapter's business).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from plant_models.scenario import ProcessDrift, Scenario
from plant_models.schema import PlantModel
from twin.scenario.report import DeviationOutcome, FaultRecord, MirrorReport, Report
from twin.scenario.sut import OrderRequest, SystemUnderTest
from twin.scenario.truth import TruthRecorder
from twin.scenario.witness import ActionWitness

if TYPE_CHECKING:
    from twin.scenario.link import EquipmentLink
    from twin.scenario.people import People
    from twin.scenario.plant import EnginePlant
    from twin.scenario.uns_mirror import UnsMirror

Speed = float | Literal["max"]
LINKS = ("opcua", "opcua-external", "direct")


@dataclass
class RunOptions:
    """How to run a scenario (the command line's options)."""

    scenario: Path
    report_dir: Path
    mes_url: str | None = None
    database_url: str | None = None
    speed: Speed | None = None
    duration: float | None = None
    """Override of the scenario's duration (tests shorten shipped scenarios)."""
    order_scale: float = 1.0
    """Multiply every order quantity (rounded, at least 1): tests and demos shorten a
    scenario's day with ``duration`` and this together."""
    progress: bool = True
    tick: float | None = None
    """Simulated seconds between two runner ticks (default: the scenario's ``tick``)."""
    dashboard_port: int | None = None
    """Start the live dashboards beside the run on this port (0: any free one)."""
    dashboard_host: str = "127.0.0.1"
    """The interface the dashboards listen on (``0.0.0.0``: reachable from other machines,
    for trainees at their own browsers)."""
    signing_key: Path | None = None
    """Ed25519 private key (PEM) that seals the report folder (default: one made per run,
    see ``twin.scenario.evidence``)."""
    adapter: str | None = None
    """Run against this system-under-test adapter instead of the scenario's (the shipped
    scenarios against another MES); its settings are then the adapter's defaults."""
    link: str | None = None
    """Override of the scenario's ``link`` (``opcua``, ``opcua-external``, ``direct``)."""

    def __post_init__(self) -> None:
        if self.link is not None and self.link not in LINKS:
            raise ValueError(f"link {self.link!r}: give one of {', '.join(LINKS)}")


@dataclass
class RunResult:
    exit_code: int
    report: Report
    report_dir: Path


@dataclass
class RunState:
    """What the run found out on the way, for the report."""

    deviations: list[DeviationOutcome] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    watch_holds: list[tuple[ProcessDrift, DeviationOutcome]] = field(default_factory=list)
    mes_down: bool = False


@dataclass
class RunContext:
    """One run's shared objects (see the module docstring)."""

    options: RunOptions
    scenario: Scenario
    plant: PlantModel
    plant_path: Path
    duration: float
    end: float
    speed: Speed
    tick: float
    orders: list[OrderRequest]
    state: RunState = field(default_factory=RunState)
    truth: TruthRecorder = field(default_factory=TruthRecorder)
    sut: SystemUnderTest | None = None
    witness: ActionWitness | None = None
    """Stands in front of ``sut``: when the people's operation starts and ends happened."""
    sim: EnginePlant | None = None
    link: EquipmentLink | None = None
    mirror: UnsMirror | None = None
    """The scenario's ``mirror`` (a second consumer beside the link), when it has one."""
    mirror_report: MirrorReport | None = None
    people: People | None = None
    link_down_until: float = -1.0
    """Plant time until which the equipment link is cut by a fault."""
    closed_out_at: float | None = None
    """Plant second at which the people's close-out ended (``Runner._settle``): they book
    lots, complete operations and clock out after the plant stopped, so the run's timeline
    ends here, not where the plant stopped. None: no close-out (the run did not get there)."""
    plant_wall_s: float = 0.0
