"""The run report: one pydantic model, written as ``report.json``.

Its JSON Schema is shipped beside this module as ``report.schema.json`` (generated from
these models by :func:`json_schema`; a test keeps the file and the models in step), so a
validation team can check and consume reports without Python. ``report.html`` and
``junit.xml`` are rendered from the same model (``twin.scenario.html``,
``twin.scenario.junit``).

KPIs follow ISO 22400-2:2014: availability = APT / PBT, effectiveness (performance) =
PRU x PQ / APT, quality ratio = GQ / PQ, OEE = their product.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
SCHEMA_VERSION = "1.0"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpectationResult(_Model):
    """One expectation of the scenario, checked at the end of the run."""

    name: str = Field(description="Name of the expectation (the JUnit test case name).")
    type: str = Field(description="Expectation type as written in the scenario.")
    passed: bool = Field(description="True only when it was checked and holds.")
    detail: str = Field(description="Why it passed or failed, with the values compared.")
    requirements: list[str] = Field(
        default_factory=list, description="Requirement ids it verifies (the scenario's)."
    )
    risk: Literal["high", "medium", "low"] | None = Field(
        None, description="GAMP 5 risk class the scenario gives its requirement(s)."
    )
    evidence: list[str] = Field(
        default_factory=list,
        description="The records compared: JSON pointers into this report "
        "(e.g. '#/deviations/2') or, for what the report does not hold, what was read "
        "from the MES.",
    )
    status: Literal["passed", "failed", "not_checked"] | None = Field(
        None,
        description="passed / failed, or not_checked: the system under test offers nothing "
        "to check it with (the detail says what); never counted as passed.",
    )

    @model_validator(mode="after")
    def _status(self) -> ExpectationResult:
        if self.status is None:
            self.status = "passed" if self.passed else "failed"
        elif self.status != "passed":
            self.passed = False
        return self


class TraceRow(_Model):
    """One requirement of the traceability matrix: requirement -> expectations ->
    evidence -> verdict."""

    requirement: str
    risk: Literal["high", "medium", "low"] | None = Field(
        None, description="The highest risk class its expectations give it."
    )
    expectations: list[str] = Field(description="Names of the expectations verifying it.")
    evidence: list[str] = Field(description="The records those expectations compared.")
    verdict: Literal["passed", "failed", "not_checked"] = Field(
        description="failed when one expectation verifying it failed; else not_checked "
        "when one could not be checked; passed only when every one passed."
    )


class ReconciliationRow(_Model):
    """One quantity of one entity, as the twin's ledger and the MES saw it."""

    entity: Literal["work_unit", "job_order", "operation", "timeline", "genealogy", "person"]
    id: str = Field(
        description="Work unit code, job order id, '<job order>/<operation segment>', a "
        "kind of timestamped record (timeline), genealogy edge 'in -> out' or person code."
    )
    quantity: str = Field(
        description="good, scrap, 'seconds <state>', 'lot <id> consumed', "
        "'start (plant s)' (seconds since the plant's start)..."
    )
    twin: float | None = Field(description="Ground truth; null when the plant has no record.")
    mes: float | None = Field(description="What the MES recorded; null when it has none.")
    difference: float | None = Field(description="mes - twin; null when one side is missing.")
    tolerance: float = Field(0.0, description="Allowed absolute difference (0 for counts).")
    matches: bool


class ReconciliationReport(_Model):
    """MES records against the twin's ledger; ``mismatches`` names each difference."""

    exact: bool = Field(description="True when every row matches.")
    rows: list[ReconciliationRow]
    mismatches: list[str] = Field(description="One sentence per row that does not match.")


class MirrorRow(_Model):
    """One cumulative PackML counter of one work unit: the twin's and the mirror's."""

    work_unit: str
    quantity: Literal["processed", "defective", "consumed"]
    twin: int | None = Field(description="Ground truth; null when the plant has no record.")
    mirror: int | None = Field(
        description="The counter the mirror's consumer holds last; null when it holds none "
        "(no birth of the device received, or the value never published)."
    )
    matches: bool | None = Field(description="null: the consumer holds no value to compare.")


class MirrorReport(_Model):
    """The run's second consumer (scenario ``mirror``): the plant published a second time
    beside the MES's link, and what a subscriber of that namespace ended with."""

    protocol: Literal["sparkplug"]
    path: str = Field(description="What the mirror went through, publisher to consumer.")
    verdict: Literal["passed", "failed", "not_checked"] = Field(
        description="passed: every counter of every work unit equals the twin's; failed: "
        "one differs; not_checked: none differs but the consumer holds no value for some "
        "(the detail says which and why)."
    )
    detail: str
    rows: list[MirrorRow]
    published: dict[str, int] = Field(
        default_factory=dict, description="The publisher's figures: messages, metrics, births."
    )
    received: dict[str, int] = Field(
        default_factory=dict,
        description="The consumer's figures: messages, births, seq gaps, rebirths asked.",
    )


class KpiRecord(_Model):
    """ISO 22400-2 KPIs of one line or work unit, over the run."""

    scope: Literal["line", "work_unit"]
    id: str
    source: Literal["mes", "twin"] = Field(
        description="Who computed the figures: the MES's KPI endpoint or the twin's ledger."
    )
    availability: float | None = None
    performance: float | None = None
    quality: float | None = None
    oee: float | None = None
    throughput_per_hour: float | None = Field(
        None,
        description="ISO 22400-2 throughput rate: produced units (PQ) per simulated hour of "
        "busy time; for a line, the units leaving it per hour of its constraint's busy time.",
    )
    good: float | None = None
    scrap: float | None = None
    scrap_ratio: float | None = None
    time_elements: dict[str, float] = Field(
        default_factory=dict, description="PBT, APT, ADOT... in seconds, as given by the source."
    )
    basis: str = Field(
        "",
        description="How the source measured the scope, when it says: for a line, where its "
        "good units are counted and whose time and pace it takes.",
    )
    master_data_errors: list[str] = Field(
        default_factory=list,
        description="Each factor above 100 % (availability, effectiveness, quality ratio "
        "are fractions by ISO 22400-2 clause 6): wrong master data, e.g. a routing PRU "
        "slower than the machine runs. Empty when the figures are plausible.",
    )


class EventCounts(_Model):
    """Plant events between twin and MES (ingestion is idempotent on source+sequence)."""

    sent: int = Field(description="Events the connector derived and posted (incl. replays).")
    ingested: int = Field(description="Distinct events the MES accepted (its audit trail).")
    lost: int = Field(description="Events the plant produced that the MES never accepted.")
    duplicated: int = Field(
        description="Events the MES accepted beyond those the plant produced (counted twice)."
    )
    replayed: int = Field(0, description="Events re-sent after a fault (refused as duplicates).")
    detail: str = ""


class DeviationOutcome(_Model):
    """An injected deviation and how the MES answered it."""

    name: str
    type: str
    at: float = Field(description="Simulated second it was injected.")
    target: str = Field(description="Order, lot, person or work unit it aimed at.")
    outcome: Literal["refused", "caught", "accepted", "not_injected", "not_checked"] = Field(
        description="refused: the action was rejected; caught: the MES reacted (hold); "
        "accepted: the MES let it through; not_injected: the bench could not inject it; "
        "not_checked: injected, but the system under test offers no way to see what it "
        "did about it."
    )
    rule: str | None = Field(None, description="The rule the MES named.")
    message: str = Field("", description="The MES's answer, or why it was not injected.")
    recorded: bool | None = Field(
        None,
        description="For a refusal: whether the MES's audit trail holds it (rule and "
        "message); null when not applicable.",
    )
    audit_entry: str | None = Field(
        None,
        description="The audit entry that records the refusal, as evidence: "
        "'<id> hash <hash>' (the id alone when the MES keeps no hash chain).",
    )


class FaultRecord(_Model):
    """An injected fault: when, what, and what happened."""

    type: str
    at: float
    until: float | None = None
    target: str = ""
    detail: str = ""


class StateInterval(_Model):
    """A work unit spent [start, end) simulated seconds in ``state`` (twin ground truth)."""

    work_unit: str
    state: str
    start: float
    end: float


class OrderProgress(_Model):
    """A job order through the run."""

    id: str
    product: str
    quantity: int
    released_at: float | None = None
    completed_at: float | None = None
    state: str | None = Field(None, description="Final state in the MES.")
    good: float | None = None
    scrap: float | None = None


class LatencySummary(_Model):
    """Latency of the MES API calls the bench made (milliseconds)."""

    count: int
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None


class ScenarioInfo(_Model):
    name: str
    file: str
    description: str = ""
    plant: str
    duration_s: float
    speed: float | Literal["max"]


class TraineeAction(_Model):
    """One action a trainee took at a dashboard terminal, and the MES's answer."""

    seq: int = Field(description="Order of arrival in the session record.")
    person: str = Field(description="Who was logged in at the terminal (MES person code).")
    roles: list[str] = Field(default_factory=list, description="The MES roles of that login.")
    action: str = Field(
        description="start_operation, consume_lot, report_counts, complete_operation, "
        "clock_in, clock_out, hold_job_order, release_job_order_hold, hold_lot, "
        "release_lot, dispose_release, dispose_rework, dispose_scrap."
    )
    target: str = Field(description="What it named, as the terminal showed it.")
    objects: list[str] = Field(
        default_factory=list,
        description="What it acted on: 'job_order:X', 'lot:Y', 'work_unit:Z', 'nc:N' (a "
        "disposition also names what the nonconformance held).",
    )
    t: float = Field(description="Plant second of the run when the answer came.")
    wall_s: float = Field(description="Wall seconds since the session record opened.")
    accepted: bool
    status: int | None = Field(None, description="HTTP status of the MES's answer.")
    rule: str | None = Field(None, description="The rule the MES named when it refused.")
    message: str = Field("", description="The MES's message (or what it returned).")


class TrainerCommand(_Model):
    """A trainer's command to the running scenario (pause, resume, speed, stop)."""

    seq: int
    command: str
    t: float = Field(description="Plant second it took effect.")
    wall_s: float


class DeviationCatch(_Model):
    """Whether a trainee caught an injected deviation (see ``PeopleSection.caught_means``)."""

    deviation: str = Field(description="The deviation's name (trainer ones: 'trainer-N-type').")
    type: str
    injected_by: Literal["trainer", "scenario"]
    at: float = Field(description="Plant second it was injected.")
    touched: list[str] = Field(
        description="The objects it touched: its job order and lot, the work unit, and "
        "what the MES held for it."
    )
    mes_outcome: str = Field(description="What the MES did (the deviation's outcome).")
    verdict: Literal["caught", "let_through", "refused_by_mes", "not_injected"]
    caught_by: str | None = Field(None, description="The trainee whose action caught it.")
    action: int | None = Field(None, description="Sequence number of that action.")
    reaction_s: float | None = Field(None, description="Plant seconds, injection to catch.")
    reaction_wall_s: float | None = Field(None, description="Wall seconds, injection to catch.")
    detail: str = ""


class TraineeSummary(_Model):
    """One trainee's session: what they did, what the MES refused, how fast they caught."""

    person: str
    roles: list[str] = Field(default_factory=list)
    actions: int
    accepted: int
    refused: int
    refusals: dict[str, int] = Field(
        default_factory=dict, description="Refusals per rule the MES named."
    )
    caught: list[str] = Field(default_factory=list, description="Deviations they caught.")
    reaction_s: list[float] = Field(
        default_factory=list, description="Plant seconds from each injection they caught."
    )
    first_action_t: float | None = None
    last_action_t: float | None = None


class PeopleSection(_Model):
    """The session record of a run with trainees at terminals (``--dashboard``): each
    trainee's actions with the MES's answers, the trainer's injections and commands, and
    which deviations trainees caught or let through."""

    caught_means: str = Field(description="The definition of caught used for ``deviations``.")
    trainees: list[TraineeSummary]
    actions: list[TraineeAction]
    commands: list[TrainerCommand] = Field(default_factory=list)
    deviations: list[DeviationCatch] = Field(default_factory=list)
    faults_injected_by_trainer: list[FaultRecord] = Field(default_factory=list)


class Report(_Model):
    """The report of one scenario run (``report.json``)."""

    schema_version: str = SCHEMA_VERSION
    scenario: ScenarioInfo
    seed: int
    versions: dict[str, str] = Field(description="mestwin, python, system under test...")
    system_under_test: str = Field(description="Adapter name and where the MES was reached.")
    database: str = Field(description="Database the MES ran on (password removed).")
    started_at: str = Field(description="Wall-clock start, ISO 8601 UTC.")
    wall_time_s: float
    plant_wall_time_s: float | None = Field(
        default=None,
        description="Wall seconds from the plant's start until all it made was in the MES "
        "(start-up and this report excluded): what a paced run's pace is judged on.",
    )
    sim_time_s: float
    passed: bool = Field(
        description="True only when the verdict is passed: at least one expectation was "
        "checked and every one holds."
    )
    verdict: Literal["passed", "failed", "not_checked"] | None = Field(
        None,
        description="The run's verdict: failed when one expectation failed; else "
        "not_checked when the run checked nothing (no expectations) or could not check one "
        "of them; passed only when every expectation was checked and holds. Always "
        "computed from the expectations.",
    )
    verdict_reason: str = Field("", description="Why the verdict is what it is, in a sentence.")
    expectations: list[ExpectationResult]
    traceability: list[TraceRow] = Field(
        default_factory=list,
        description="Requirement -> expectations -> evidence -> verdict, in the order the "
        "requirements first appear; expectations with no requirement are not listed.",
    )
    reconciliation: ReconciliationReport
    kpis: list[KpiRecord]
    events: EventCounts
    deviations: list[DeviationOutcome]
    faults: list[FaultRecord]
    orders: list[OrderProgress]
    states: list[StateInterval] = Field(
        description="Ground-truth equipment state timeline in slices of "
        "``state_resolution_s``: within a slice each state is drawn once, as long as it "
        "lasted there, in the order the states first occurred, so the seconds per state "
        "add up to the reconciled ones."
    )
    state_resolution_s: float = Field(0.0, description="Slice length of ``states`` (s).")
    api_latency: LatencySummary
    notes: list[str] = Field(
        default_factory=list, description="What the run could not do, and why."
    )
    people: PeopleSection | None = Field(
        None,
        description="Trainees at the dashboards' terminals and the trainer's console "
        "(runs with --dashboard); null when nobody could act.",
    )
    mirror: MirrorReport | None = Field(
        None, description="The scenario's mirror (a second consumer), when it has one."
    )

    @model_validator(mode="after")
    def _verdict(self) -> Report:
        self.verdict, self.verdict_reason = run_verdict(self.expectations)
        # A run that checked nothing (or not everything) never reads as passed.
        self.passed = self.verdict == "passed"
        return self


EXIT_CODES = {"passed": 0, "failed": 1, "not_checked": 3}
"""``mestwin run``'s exit code per verdict (2: the scenario file is broken)."""


def run_verdict(
    expectations: list[ExpectationResult],
) -> tuple[Literal["passed", "failed", "not_checked"], str]:
    """The run's verdict from its expectations, with the reason: failed when one failed;
    not_checked when there are none or one could not be checked; else passed."""
    if not expectations:
        return "not_checked", "nothing was checked: the scenario has no expectations"
    failed = [e.name for e in expectations if e.status == "failed"]
    if failed:
        return "failed", f"{len(failed)} of {len(expectations)} expectations failed"
    unchecked = [e.name for e in expectations if e.status == "not_checked"]
    if len(unchecked) == len(expectations):
        return "not_checked", (
            f"nothing was checked: none of the {len(expectations)} expectations could be "
            "checked on this system under test"
        )
    if unchecked:
        return "not_checked", (
            f"{len(unchecked)} of {len(expectations)} expectations could not be checked "
            f"({', '.join(unchecked[:5])}{', ...' if len(unchecked) > 5 else ''}); the "
            "others passed"
        )
    return "passed", f"all {len(expectations)} expectations passed"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``report.json`` (draft 2020-12)."""
    schema = Report.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "urn:mestwin:report:" + SCHEMA_VERSION
    return schema


def load_schema() -> dict[str, Any]:
    """The shipped ``report.schema.json``."""
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


def write_json(report: Report, path: Path) -> None:
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":  # regenerate the shipped schema: python -m twin.scenario.report
    SCHEMA_PATH.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
