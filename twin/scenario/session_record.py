"""The session record of a run with trainees: what each did at a terminal and what the MES
answered, the trainer's commands and injections, and the report's ``people`` section.

**Caught, honestly.** A deviation is *caught* by a trainee when, at or after its
injection, an action of that trainee which the MES *accepted* put on hold, or disposed as
scrap or rework, something the deviation touched: its job order or lot, or what the MES
held for it (a nonconformance names them). A release disposition is not a catch: the
trainee looked and let the product go on (it is named in the verdict's detail). A
deviation the MES refused at the door (a wrong lot scanned: ``MATERIAL_NOT_ON_BOM``) is
``refused_by_mes``: nothing reached the floor for a trainee to catch. Everything else the
bench injected is ``let_through``: it reached the plant or the MES and no trainee caught it
before the run ended. The reaction time is from the injection to the catching action, in
plant seconds and in wall seconds (a paced run's trainees live in wall time).

Only what trainees did at the bench's terminals is recorded here (the dashboards post each
action with the MES's answer); an action made some other way (curl) is in the MES's audit
trail, not in this record.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plant_models.scenario import (
    Deviation,
    ExpiredLot,
    Fault,
    OutOfCalibration,
    ProcessDrift,
    RandomBreakdowns,
    WrongLot,
)
from twin.scenario.report import (
    DeviationCatch,
    DeviationOutcome,
    FaultRecord,
    PeopleSection,
    TraineeAction,
    TraineeSummary,
    TrainerCommand,
)

CAUGHT_MEANS = (
    "A deviation is caught by a trainee when, at or after its injection, an action of "
    "that trainee which the MES accepted put on hold, or disposed as scrap or rework, "
    "something the deviation touched (its job order or lot, or what the MES held for it). "
    "A release disposition is not a catch. refused_by_mes: the MES refused it at the door, "
    "nothing reached the floor. let_through: it reached the plant or the MES and no "
    "trainee caught it before the run ended. Only actions at the bench's terminals count."
)

#: Trainee actions that catch what they touch (when the MES accepted them).
CATCHING = frozenset({"hold_job_order", "hold_lot", "dispose_rework", "dispose_scrap"})

_OBJECT = re.compile(r"\b(job_order|lot):([A-Za-z0-9_.\-]+)")


class TraineeActionIn(BaseModel):
    """What a terminal posts to the run's control API for each action."""

    model_config = ConfigDict(extra="forbid")

    person: str = Field(min_length=1, max_length=100)
    roles: list[str] = Field(default_factory=list, max_length=20)
    action: str = Field(min_length=1, max_length=60)
    target: str = Field("", max_length=300)
    objects: list[str] = Field(default_factory=list, max_length=50)
    accepted: bool
    status: int | None = None
    rule: str | None = Field(None, max_length=80)
    message: str = Field("", max_length=2000)


@dataclass
class Injection:
    """A trainer's injection as it was applied."""

    seq: int
    entry: Fault | Deviation
    at: float
    wall_s: float


@dataclass
class SessionRecord:
    """Thread-safe: terminals post from the control API's threads, the runner reads."""

    opened: float = field(default_factory=time.monotonic)
    actions: list[TraineeAction] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)
    commands: list[TrainerCommand] = field(default_factory=list)
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def add_action(self, a: TraineeActionIn, *, t: float, wall: float) -> int:
        with self._lock:
            seq = self._next()
            self.actions.append(
                TraineeAction(
                    seq=seq, t=round(t, 3), wall_s=round(wall - self.opened, 3), **a.model_dump()
                )
            )
        return seq

    def add_injection(self, entry: Fault | Deviation, at: float, wall: float) -> int:
        with self._lock:
            seq = self._next()
            self.injections.append(
                Injection(seq, entry, round(at, 3), round(wall - self.opened, 3))
            )
        return seq

    def add_command(self, command: str, t: float) -> int:
        with self._lock:
            seq = self._next()
            self.commands.append(
                TrainerCommand(
                    seq=seq,
                    command=command,
                    t=round(t, 3),
                    wall_s=round(time.monotonic() - self.opened, 3),
                )
            )
        return seq

    def feed(
        self,
        since: int = 0,
        deviations: list[DeviationOutcome] | None = None,
        faults: list[FaultRecord] | None = None,
    ) -> list[dict[str, Any]]:
        """Everything from sequence ``since`` on, oldest first, for the trainer console;
        injections carry their outcome once the run applied them."""
        with self._lock:
            items: list[dict[str, Any]] = [
                {"kind": "action", **a.model_dump()} for a in self.actions if a.seq > since
            ]
            items += [{"kind": "command", **c.model_dump()} for c in self.commands if c.seq > since]
            injections = [i for i in self.injections if i.seq > since]
        for i in injections:
            outcome = injection_outcome(i, deviations or [], faults or [])
            items.append(
                {
                    "kind": "injection",
                    "seq": i.seq,
                    "t": i.at,
                    "wall_s": i.wall_s,
                    "type": i.entry.type,
                    "parameters": describe_entry(i.entry),
                    "outcome": outcome,
                }
            )
        return sorted(items, key=lambda x: int(x["seq"]))


def describe_entry(entry: Fault | Deviation) -> str:
    skip = {"type", "at", "optional", "when", "name"}
    data = entry.model_dump(exclude_none=True)
    return ", ".join(f"{k}={v}" for k, v in data.items() if k not in skip)


def injection_outcome(
    i: Injection, deviations: list[DeviationOutcome], faults: list[FaultRecord]
) -> str:
    """What the run made of a trainer's injection, in words ('' until applied)."""
    name = getattr(i.entry, "name", None)
    if name is not None:
        d = next((d for d in deviations if d.name == name), None)
        if d is None:
            return ""
        rule = f" {d.rule}" if d.rule else ""
        return f"{d.outcome}{rule}: {d.message}".strip()
    kind = "breakdown" if isinstance(i.entry, RandomBreakdowns) else i.entry.type
    f = next((f for f in faults if f.type == kind and abs(f.at - i.at) < 1e-6), None)
    if f is None:
        return ""
    return f"{f.type} {f.target}: {f.detail}".strip()


def touched(
    outcome: DeviationOutcome, entry: Deviation | None, fired_order: str | None
) -> list[str]:
    """The objects a deviation touched: its job order (as the injector aimed it), its lot,
    its work unit, and what the MES held for it (named in its outcome)."""
    out: list[str] = []
    if fired_order:
        out.append(f"job_order:{fired_order}")
    if isinstance(entry, WrongLot | ExpiredLot):
        out.append(f"lot:{entry.lot}")
    if isinstance(entry, ProcessDrift | OutOfCalibration):
        out.append(f"work_unit:{entry.work_unit}")
    out += [f"{kind}:{code}" for kind, code in _OBJECT.findall(outcome.message)]
    return sorted(set(out), key=out.index)


def judge(
    outcome: DeviationOutcome,
    objects: list[str],
    actions: list[TraineeAction],
    injected_by: str,
    wall_at: float | None,
) -> DeviationCatch:
    """Caught / let through / refused by the MES / not injected (``CAUGHT_MEANS``)."""
    catch = DeviationCatch(
        deviation=outcome.name,
        type=outcome.type,
        injected_by=injected_by,
        at=outcome.at,
        touched=objects,
        mes_outcome=outcome.outcome + (f" {outcome.rule}" if outcome.rule else ""),
        verdict="let_through",
    )
    if outcome.outcome == "not_injected" or outcome.at < 0:
        catch.verdict = "not_injected"
        catch.detail = outcome.message
        return catch
    if outcome.outcome == "refused":
        catch.verdict = "refused_by_mes"
        catch.detail = f"the MES refused it: {outcome.message}"
        return catch
    wanted = set(objects)
    after = [a for a in actions if a.t >= outcome.at and a.accepted and wanted & set(a.objects)]
    hit = next((a for a in after if a.action in CATCHING), None)
    if hit is not None:
        catch.verdict = "caught"
        catch.caught_by = hit.person
        catch.action = hit.seq
        catch.reaction_s = round(hit.t - outcome.at, 3)
        if wall_at is not None:
            catch.reaction_wall_s = round(hit.wall_s - wall_at, 3)
        catch.detail = f"{hit.person}: {hit.action} {hit.target}"
        return catch
    released = next((a for a in after if a.action == "dispose_release"), None)
    catch.detail = (
        f"{released.person} signed a release of {released.target} (action {released.seq})"
        if released is not None
        else "no trainee held or disposed what it touched before the run ended"
    )
    return catch


def people_section(
    record: SessionRecord,
    deviations: list[DeviationOutcome],
    faults: list[FaultRecord],
    fired_order: dict[str, str],
    scenario_deviations: list[Deviation],
) -> PeopleSection:
    """The report's ``people`` section from the record and the run's outcomes."""
    with record._lock:
        actions = list(record.actions)
        injections = list(record.injections)
        commands = list(record.commands)
    entries: dict[str, tuple[Deviation, float | None]] = {
        e.name: (e, None) for e in scenario_deviations
    }
    trainer_names: set[str] = set()
    for i in injections:
        name = getattr(i.entry, "name", None)
        if name is not None:
            entries[name] = (i.entry, i.wall_s)  # type: ignore[assignment]
            trainer_names.add(name)
    catches = []
    for d in deviations:
        entry, wall_at = entries.get(d.name, (None, None))
        objects = touched(d, entry, fired_order.get(d.name))
        by = "trainer" if d.name in trainer_names else "scenario"
        catches.append(judge(d, objects, actions, by, wall_at))
    trainer_faults: list[FaultRecord] = []
    for i in injections:
        if getattr(i.entry, "name", None) is not None:
            continue  # a deviation: judged above
        series = isinstance(i.entry, RandomBreakdowns)
        kind = "breakdown" if series else i.entry.type
        trainer_faults += [
            f
            for f in faults
            if f.type == kind and (f.at >= i.at - 1e-6 if series else abs(f.at - i.at) < 1e-6)
        ]
    return PeopleSection(
        caught_means=CAUGHT_MEANS,
        trainees=_summaries(actions, catches),
        actions=actions,
        commands=commands,
        deviations=catches,
        faults_injected_by_trainer=trainer_faults,
    )


def _summaries(actions: list[TraineeAction], catches: list[DeviationCatch]) -> list[TraineeSummary]:
    out = []
    for person in sorted({a.person for a in actions}):
        mine = [a for a in actions if a.person == person]
        refused = [a for a in mine if not a.accepted]
        caught = [c for c in catches if c.caught_by == person]
        out.append(
            TraineeSummary(
                person=person,
                roles=sorted({r for a in mine for r in a.roles}),
                actions=len(mine),
                accepted=len(mine) - len(refused),
                refused=len(refused),
                refusals=dict(Counter(a.rule or f"HTTP {a.status}" for a in refused)),
                caught=[c.deviation for c in caught],
                reaction_s=[c.reaction_s for c in caught if c.reaction_s is not None],
                first_action_t=min(a.t for a in mine),
                last_action_t=max(a.t for a in mine),
            )
        )
    return out
