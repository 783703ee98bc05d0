"""The control channel of a running scenario: a trainer steers the run while trainees act.

A run started with ``--dashboard`` opens a small HTTP API on a free loopback port, guarded
by a random bearer token that only the dashboards' child process receives (in its
environment, never on a command line). The dashboards' trainer console uses it to pause,
resume, change the speed, end the run and inject any fault or deviation of the scenario
language now; their operator terminal and supervisor/QA pages post every trainee action
with the MES's answer to it, which becomes the report's ``people`` section
(``twin.scenario.session_record``).

```
 browser ─► dashboards (child process) ──HTTP + bearer token──► ControlServer (run process)
                                                                   │ commands: a queue
 runner loop, once per tick: Steering.tick(t) ◄────────────────────┘
   pause (blocks the loop; the plant stands still), resume, speed (pacing re-anchored),
   stop (the run ends at this tick: settle, report), inject (the scenario's own types,
   validated as a timeline entry, turned into the same actions by FaultInjector)
```

Endpoints (JSON; every one needs ``Authorization: Bearer <token>``):

- ``GET /status``: plant second, end, speed, paused, ended, scenario, plant start.
- ``GET /injectable``: every fault and deviation type the scenario language knows
  (``plant_models.scenario.Fault`` and ``Deviation``), with their fields, defaults and the
  plant's choices (work units, lots, people, process values, orders).
- ``POST /commands``: ``{"command": "pause" | "resume" | "stop"}``, ``{"command": "speed",
  "speed": 120}``, ``{"command": "inject", "type": "breakdown", "work_unit": ...}``;
  202 when queued, 422 with the reason when refused (an injection is validated here, so a
  wrong field is refused at once, not at the next tick).
- ``POST /actions``: a trainee's action and the MES's answer (``TraineeActionIn``).
- ``GET /record?since=N``: the session's feed (trainee actions, injections with their
  outcome, the trainer's commands) from sequence number ``N`` on.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import threading
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlparse

from pydantic import BaseModel, TypeAdapter, ValidationError

from plant_models.scenario import (
    DEVIATION_TYPES,
    Deviation,
    Fault,
    OutOfCalibration,
    ProcessDrift,
    RandomBreakdowns,
    TimelineEntry,
)
from twin.scenario.context import RunContext, Speed
from twin.scenario.deviations import DeviationInjector
from twin.scenario.report import PeopleSection
from twin.scenario.session_record import SessionRecord, TraineeActionIn, people_section

ENTRY = TypeAdapter(TimelineEntry)

#: Fields of a timeline entry a trainer does not set: the runner does (now, a name) or
#: they make no sense now (``when`` waits for an event; ``optional``: a trainer's
#: injection never fails the run).
NOT_ASKED = frozenset({"type", "at", "when", "optional", "name"})

COMMANDS = ("pause", "resume", "speed", "stop", "inject")

DEVIATION_NAMES = frozenset(
    typing.get_args(m.model_fields["type"].annotation)[0] for m in DEVIATION_TYPES
)


def injectable_types() -> list[type[BaseModel]]:
    """Every fault and deviation type of the scenario language, in its own order."""
    return [*typing.get_args(Fault), *typing.get_args(Deviation)]


def _choices(name: str, ctx: RunContext) -> list[str]:
    plant = ctx.plant
    if name == "work_unit":
        return [wu.code for wu in plant.all_work_units()]
    if name == "lot":
        return [lot.id for lot in plant.material_lots]
    if name == "person":
        return [op.id for op in plant.operators]
    if name == "value":
        return sorted({pv.name for wu in plant.all_work_units() for pv in wu.process_values})
    if name == "order":
        return [o.id for o in ctx.orders]
    if name == "operation":
        return sorted({s.id for p in plant.products for s in p.segments})
    return []


def describe_injectable(ctx: RunContext) -> list[dict[str, Any]]:
    """The trainer console's list: each type with its fields, built from the pydantic
    models of the scenario language (never a hand-kept copy) and the run's plant."""
    out = []
    for model in injectable_types():
        kind = "deviation" if model in DEVIATION_TYPES else "fault"
        type_name = typing.get_args(model.model_fields["type"].annotation)[0]
        fields = []
        for name, info in model.model_fields.items():
            if name in NOT_ASKED:
                continue
            literal = typing.get_args(info.annotation) if _is_literal(info.annotation) else ()
            choices = [str(c) for c in literal] or _choices(name, ctx)
            fields.append(
                {
                    "name": name,
                    "required": info.is_required(),
                    "default": None if info.is_required() else _jsonable(info.default),
                    "choices": choices,
                    "doc": info.description or "",
                }
            )
        out.append(
            {
                "type": type_name,
                "kind": kind,
                "doc": " ".join((model.__doc__ or "").split()),
                "fields": fields,
            }
        )
    return out


def _is_literal(annotation: object) -> bool:
    return typing.get_origin(annotation) is Literal


def _jsonable(value: object) -> object:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def validate_injection(data: dict[str, Any], name: str) -> Fault | Deviation:
    """A trainer's injection as a timeline entry of the scenario language (``at`` 0, set
    at the tick it is applied); raises ``ValueError`` with pydantic's message."""
    fields = {k: v for k, v in data.items() if k not in ("command",) and v not in ("", None)}
    fields.update(at=0.0, optional=True)
    if fields.get("type") in DEVIATION_NAMES:
        fields["name"] = name
    if fields.get("type") == "random_breakdowns":
        fields.pop("at")
    for key in ("when",):
        fields.pop(key, None)
    try:
        entry: Fault | Deviation = ENTRY.validate_python(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'type'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(problems) from None
    return entry


@dataclass
class Command:
    """One trainer command, queued until the runner's next tick."""

    kind: str
    speed: Speed | None = None
    entry: Fault | Deviation | None = None
    seq: int = 0


@dataclass
class RunControl:
    """The run's side of the channel: commands in (any thread), state and the session
    record out. The runner applies commands with :class:`Steering`."""

    ctx: RunContext
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    trainer_password: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    record: SessionRecord = field(default_factory=SessionRecord)
    paused: bool = False
    ended: bool = False
    _queue: list[Command] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _injected: int = 0
    server: ControlServer | None = None

    # -- any thread ------------------------------------------------------------------------

    def now(self) -> float:
        """The plant second the run is at."""
        sim = self.ctx.sim
        return sim.now() if sim is not None else 0.0

    def status(self) -> dict[str, Any]:
        ctx = self.ctx
        return {
            "scenario": ctx.scenario.name,
            "t": round(self.now(), 3),
            "end": ctx.end,
            "speed": ctx.speed,
            "paused": self.paused,
            "ended": self.ended,
            "plant_start": ctx.plant.plant.start.isoformat(),
        }

    def submit(self, data: dict[str, Any]) -> Command:
        """Queue a command (``ValueError`` when it is refused: unknown, bad speed, an
        injection the scenario language refuses)."""
        kind = data.get("command")
        if kind not in COMMANDS:
            raise ValueError(f"command must be one of {', '.join(COMMANDS)}")
        if self.ended:
            raise ValueError("the run has ended")
        cmd = Command(str(kind))
        if kind == "speed":
            cmd.speed = _speed(data.get("speed"))
        elif kind == "inject":
            with self._cond:
                self._injected += 1
                n = self._injected
            cmd.entry = validate_injection(data, f"trainer-{n}-{data.get('type')}")
        with self._cond:
            self._queue.append(cmd)
            self._cond.notify_all()
        return cmd

    def post_action(self, action: TraineeActionIn) -> int:
        """A trainee's action and the MES's answer, stamped with the run's plant second."""
        return self.record.add_action(action, t=self.now(), wall=time.monotonic())

    # -- the runner's thread ---------------------------------------------------------------

    def take(self, wait: float = 0.0) -> list[Command]:
        with self._cond:
            if not self._queue and wait > 0:
                self._cond.wait(wait)
            out, self._queue = self._queue, []
        return out

    # -- the HTTP side ---------------------------------------------------------------------

    def start_server(self) -> str:
        """Serve the API on a free loopback port; its base URL."""
        self.server = ControlServer(self)
        return self.server.url

    def people_section(self, deviations: DeviationInjector) -> PeopleSection:
        """The report's ``people`` section (``twin.scenario.session_record``)."""
        state = self.ctx.state
        return people_section(
            self.record,
            state.deviations,
            state.faults,
            deviations.fired_orders(),
            self.ctx.scenario.deviations,
        )

    def close(self) -> None:
        self.ended = True
        if self.server is not None:
            self.server.stop()


def _speed(value: object) -> Speed:
    if value == "max":
        return "max"
    try:
        speed = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"speed {value!r}: give a number > 0 or 'max'") from None
    if not speed > 0 or speed > 1e6:
        raise ValueError(f"speed {value!r}: give a number > 0 or 'max'")
    return speed


class Steering:
    """The runner's hook: apply the queued commands at each tick (small on purpose; the
    runner calls :meth:`tick` once per tick and :meth:`pace_anchor` when pacing)."""

    def __init__(
        self,
        control: RunControl,
        inject: Callable[[Fault | Deviation, int, float], list[Any]],
    ) -> None:
        self.control = control
        self.ctx = control.ctx
        self._inject = inject
        self.anchor: tuple[float, float] | None = None
        """(plant second, wall monotonic) pacing counts from; moved by pauses and speed
        changes (None: from the plant's start)."""

    def tick(self, t: float, actions: list[Any]) -> list[Any]:
        """Apply what the trainer asked since the last tick; returns ``actions`` with the
        injected entries' actions merged in (due now, or later for a random series)."""
        ctx = self.ctx
        now = ctx.sim.now() if ctx.sim is not None else 0.0
        cmds = self.control.take()
        while True:
            for cmd in cmds:
                actions = self._apply(cmd, now, t, actions)
            if not self.control.paused or self.control.ended:
                return actions
            cmds = self.control.take(wait=0.25)
            if not self.control.paused:
                self.anchor = (now, time.monotonic())

    def _apply(self, cmd: Command, now: float, t: float, actions: list[Any]) -> list[Any]:
        ctx = self.ctx
        record = self.control.record
        if cmd.kind == "pause":
            if not self.control.paused:
                self.control.paused = True
                record.add_command("pause", now)
        elif cmd.kind == "resume":
            if self.control.paused:
                self.control.paused = False
                self.anchor = (now, time.monotonic())
                record.add_command("resume", now)
        elif cmd.kind == "speed" and cmd.speed is not None:
            ctx.speed = cmd.speed
            self.anchor = (now, time.monotonic())
            record.add_command(f"speed {cmd.speed}", now)
        elif cmd.kind == "stop":
            self.control.paused = False
            ctx.end = min(ctx.end, t)
            ctx.duration = min(ctx.duration, t)
            ctx.state.notes.append(f"The trainer ended the run at {t:g} s of plant time.")
            record.add_command("stop", now)
        elif cmd.kind == "inject" and cmd.entry is not None:
            entry = self._aimed(_at(cmd.entry, now))
            new = self._inject(entry, 10_000 + len(record.injections), now)
            record.add_injection(entry, now, time.monotonic())
            actions = sorted([*actions, *new], key=lambda a: (a.at, a.order))
        return actions

    def _aimed(self, entry: Fault | Deviation) -> Fault | Deviation:
        """A drift or a lapsed calibration with no order named aims at the order running on
        its work unit now, else the first order sent to its line and not finished (the one
        the machine runs next), so its hold, if the MES places one, is on the order it hit."""
        people = self.ctx.people
        if not isinstance(entry, ProcessDrift | OutOfCalibration) or entry.order or not people:
            return entry
        running = [
            op
            for op in people.ops.values()
            if op.work_unit == entry.work_unit and op.started and not op.completed
        ]
        if running:
            order = max(running, key=lambda op: op.started_at).order
        else:
            line = people.wu_line.get(entry.work_unit)
            queued = [
                o
                for o, at in sorted(people.sent.items(), key=lambda kv: (kv[1], kv[0]))
                if o not in people.finished_orders()
                and (p := people.product_of(o)) is not None
                and p.line == line
            ]
            if not queued:
                return entry
            order = queued[0]
        return entry.model_copy(update={"order": order})


def _at(entry: Fault | Deviation, now: float) -> Fault | Deviation:
    if isinstance(entry, RandomBreakdowns):
        end = entry.end
        return entry.model_copy(
            update={"start": now + entry.start, "end": None if end is None else now + end}
        )
    return entry.model_copy(update={"at": now})


class _Handler(BaseHTTPRequestHandler):
    control: RunControl
    wbufsize = 1 << 16  # headers and body leave in one write (no Nagle/delayed-ACK stall)

    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per request would drown the run's console

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization", "")
        want = f"Bearer {self.control.token}"
        if hmac.compare_digest(given.encode(), want.encode()):
            return True
        self._send(401, {"error": "a bearer token is needed (the run's control token)"})
        return False

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 64_000:
            raise ValueError("body too large")
        data = json.loads(self.rfile.read(length) or b"{}")
        if not isinstance(data, dict):
            raise ValueError("a JSON object is expected")
        return data

    def do_GET(self) -> None:
        if not self._authorised():
            return
        url = urlparse(self.path)
        control = self.control
        if url.path == "/status":
            self._send(200, control.status())
        elif url.path == "/injectable":
            self._send(200, describe_injectable(control.ctx))
        elif url.path == "/record":
            try:
                since = int((parse_qs(url.query).get("since") or ["0"])[0] or 0)
            except ValueError:
                self._send(422, {"error": "since: give a sequence number"})
                return
            state = control.ctx.state
            feed = control.record.feed(since, state.deviations, state.faults)
            self._send(200, {"status": control.status(), "feed": feed})
        else:
            self._send(404, {"error": f"no {url.path}"})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        path = urlparse(self.path).path
        try:
            body = self._body()
            if path == "/commands":
                cmd = self.control.submit(body)
                self._send(202, {"queued": cmd.kind})
            elif path == "/actions":
                seq = self.control.post_action(TraineeActionIn.model_validate(body))
                self._send(201, {"seq": seq})
            else:
                self._send(404, {"error": f"no {path}"})
        except ValidationError as exc:
            self._send(422, {"error": str(exc)})
        except ValueError as exc:
            self._send(422, {"error": str(exc)})


class ControlServer:
    """The control API on ``127.0.0.1:<free port>``, served from a daemon thread."""

    def __init__(self, control: RunControl) -> None:
        handler = type("Handler", (_Handler,), {"control": control})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="mestwin-run-control", daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
