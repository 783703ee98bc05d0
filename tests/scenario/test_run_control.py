"""The run's control channel (issue 15) without a run: the HTTP API and its token, the
injectable list built from the scenario language, the runner's steering hook (pause,
resume, speed, stop, inject), and the report's people section ("caught", honestly)."""

from __future__ import annotations

import threading
import time
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest

from plant_models.scenario import SCENARIOS_DIR, Deviation, Fault, ProcessDrift, WrongLot
from twin.scenario.context import RunContext
from twin.scenario.control import RunControl, Steering, describe_injectable
from twin.scenario.faults import Action
from twin.scenario.report import DeviationOutcome, FaultRecord, Report
from twin.scenario.runner import Runner, RunOptions
from twin.scenario.session_record import SessionRecord, TraineeActionIn, people_section


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    """A loaded run (scenario, plant, orders) that is never started."""
    out = tmp_path_factory.mktemp("control")
    return Runner(
        RunOptions(scenario=SCENARIOS_DIR / "clean_bottling_day.yaml", report_dir=out)
    ).ctx


class _Sim:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


def test_the_inject_list_is_the_scenario_languages_own(ctx: RunContext) -> None:
    listed = {item["type"]: item for item in describe_injectable(ctx)}
    known = {
        typing.get_args(m.model_fields["type"].annotation)[0]
        for m in (*typing.get_args(Fault), *typing.get_args(Deviation))
    }
    assert set(listed) == known
    breakdown = {f["name"]: f for f in listed["breakdown"]["fields"]}
    assert set(breakdown) == {"work_unit", "duration", "reason"}
    assert "BTL1-CAPPER" in breakdown["work_unit"]["choices"] and breakdown["work_unit"]["required"]
    assert breakdown["reason"]["default"] == "injected breakdown"
    wrong = {f["name"]: f for f in listed["wrong_lot"]["fields"]}
    assert "LW-5510" in wrong["lot"]["choices"] and listed["wrong_lot"]["kind"] == "deviation"
    sign = {f["name"]: f for f in listed["uncertified_operator"]["fields"]}
    assert sign["action"]["choices"] == ["start", "sign"]


def test_the_api_needs_the_token_and_queues_checked_commands(ctx: RunContext) -> None:
    control = RunControl(ctx)
    url = control.start_server()
    try:
        assert httpx.get(url + "/status").status_code == 401
        assert httpx.get(url + "/status", headers={"Authorization": "Bearer x"}).status_code == 401
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {control.token}"})
        assert api.get("/status").json()["scenario"] == "clean-bottling-day"
        assert api.post("/commands", json={"command": "pause"}).status_code == 202
        bad = api.post("/commands", json={"command": "speed", "speed": -3})
        assert bad.status_code == 422 and "number > 0" in bad.json()["error"]
        refused = api.post("/commands", json={"command": "inject", "type": "breakdown"})
        assert refused.status_code == 422
        assert "work_unit" in refused.json()["error"] and "duration" in refused.json()["error"]
        unknown = api.post("/commands", json={"command": "inject", "type": "meteor"})
        assert unknown.status_code == 422
        ok = api.post(
            "/commands",
            json={
                "command": "inject",
                "type": "breakdown",
                "work_unit": "BTL1-CAPPER",
                "duration": "10m",
            },
        )
        assert ok.status_code == 202
        queued = control.take()
        assert [c.kind for c in queued] == ["pause", "inject"]
        entry = queued[1].entry
        assert entry is not None and entry.type == "breakdown" and entry.optional
        assert getattr(entry, "duration", None) == 600.0
        action = {
            "person": "OP-ANNA",
            "roles": ["operator"],
            "action": "consume_lot",
            "target": "LW-5510 on JO-1/1",
            "objects": ["job_order:JO-1", "lot:LW-5510"],
            "accepted": False,
            "status": 409,
            "rule": "MATERIAL_NOT_ON_BOM",
            "message": "not on the BOM",
        }
        assert api.post("/actions", json=action).status_code == 201
        assert api.post("/actions", json={**action, "hacked": 1}).status_code == 422
        feed = api.get("/record", params={"since": 0}).json()["feed"]
        assert [(f["kind"], f["rule"]) for f in feed] == [("action", "MATERIAL_NOT_ON_BOM")]
    finally:
        control.close()


def test_steering_pauses_resumes_changes_speed_injects_and_stops(ctx: RunContext) -> None:
    ctx.sim = _Sim(300.0)  # type: ignore[assignment]
    end, duration = ctx.end, ctx.duration
    try:
        control = RunControl(ctx)
        injected: list[Any] = []

        def inject(entry: Any, n: int, t: float) -> list[Action]:
            injected.append(entry)
            return [Action(t, n, entry.type, lambda _t: None)]

        steering = Steering(control, inject)
        control.submit({"command": "pause"})
        released = threading.Timer(0.3, lambda: control.submit({"command": "resume"}))
        released.start()
        began = time.monotonic()
        assert steering.tick(300.0, []) == []
        assert time.monotonic() - began >= 0.25, "a pause did not hold the run's loop"
        assert not control.paused and steering.anchor is not None
        control.submit({"command": "speed", "speed": "120"})
        later = Action(900.0, 0, "opcua_drop", lambda _t: None)
        control.submit(
            {"command": "inject", "type": "process_drift", "work_unit": "BTL1-FILLER"}
            | {"value": "FillWeight", "rate": 240}
        )
        actions = steering.tick(300.0, [later])
        assert ctx.speed == 120.0
        assert [a.label for a in actions] == ["process_drift", "opcua_drop"]
        drift = injected[0]
        assert isinstance(drift, ProcessDrift) and drift.at == 300.0
        assert drift.name == "trainer-1-process_drift"
        control.submit({"command": "stop"})
        steering.tick(360.0, [])
        assert ctx.end == 360.0 and ctx.duration == 360.0
        assert [c.command for c in control.record.commands] == [
            "pause",
            "resume",
            "speed 120.0",
            "stop",
        ]
        with pytest.raises(ValueError, match="ended"):
            control.close()
            control.submit({"command": "pause"})
    finally:
        ctx.sim, ctx.end, ctx.duration = None, end, duration
        ctx.speed = "max"


def _act(record: SessionRecord, t: float, **kw: Any) -> None:
    base: dict[str, Any] = {"person": "QA-EVA", "roles": ["qa"], "accepted": True, "target": ""}
    record.add_action(TraineeActionIn(**(base | kw)), t=t, wall=record.opened + t / 60)


def test_people_section_says_who_caught_what_and_what_was_let_through() -> None:
    record = SessionRecord()
    drift = ProcessDrift(
        type="process_drift",
        name="trainer-1-process_drift",
        at=100.0,
        work_unit="BTL1-FILLER",
        value="FillWeight",
        rate=240,
    )
    record.add_injection(drift, 100.0, record.opened + 100 / 60)
    wrong = WrongLot(type="wrong_lot", name="w", at=50.0, lot="LW-5510")
    outcomes = [
        DeviationOutcome(
            name=drift.name,
            type="process_drift",
            at=100.0,
            target="BTL1-FILLER.FillWeight drifts +240/h",
            outcome="caught",
            rule="out_of_spec",
            message="nonconformance NC-000001 holds job_order:JO-1001, lot:PF-1 (seen at 200 s)",
        ),
        DeviationOutcome(
            name="w",
            type="wrong_lot",
            at=50.0,
            target="lot LW-5510",
            outcome="refused",
            rule="MATERIAL_NOT_ON_BOM",
        ),
        DeviationOutcome(
            name="late", type="process_drift", at=150.0, target="x", outcome="accepted"
        ),
        DeviationOutcome(name="never", type="wrong_lot", at=-1, target="", outcome="not_injected"),
    ]
    _act(record, 40.0, action="dispose_scrap", objects=["nc:NC-0", "job_order:JO-1001"])
    _act(
        record,
        60.0,
        person="OP-ANNA",
        roles=["operator"],
        action="consume_lot",
        objects=["job_order:JO-1002", "lot:LW-5510"],
        accepted=False,
        status=409,
        rule="MATERIAL_NOT_ON_BOM",
    )
    _act(record, 220.0, action="dispose_release", target="NC-000009", objects=["job_order:JO-9"])
    _act(record, 250.0, action="dispose_scrap", target="NC-000001", objects=["job_order:JO-1001"])
    breakdown = FaultRecord(type="breakdown", at=130.0, target="BTL1-CAPPER", detail="x")
    section = people_section(
        record,
        outcomes,
        [breakdown],
        {drift.name: "JO-1001", "late": "JO-9"},
        [wrong],
    )
    verdicts = {d.deviation: d for d in section.deviations}
    caught = verdicts[drift.name]
    assert caught.verdict == "caught" and caught.injected_by == "trainer"
    assert caught.caught_by == "QA-EVA" and caught.reaction_s == 150.0  # not the one at 40 s
    assert caught.reaction_wall_s == pytest.approx(2.5)
    assert verdicts["w"].verdict == "refused_by_mes" and verdicts["w"].injected_by == "scenario"
    late = verdicts["late"]
    assert late.verdict == "let_through" and "signed a release of NC-000009" in late.detail
    assert verdicts["never"].verdict == "not_injected"
    people = {p.person: p for p in section.trainees}
    assert people["OP-ANNA"].refusals == {"MATERIAL_NOT_ON_BOM": 1}
    assert people["QA-EVA"].caught == [drift.name] and people["QA-EVA"].reaction_s == [150.0]
    assert section.faults_injected_by_trainer == []  # the breakdown was the scenario's
    # The section fits the published report schema (Report validates it on the way).
    assert Report.model_fields["people"].annotation is not None
    assert "caught" in section.caught_means and "release" in section.caught_means


def test_people_section_is_in_the_published_schema() -> None:
    import json

    schema = json.loads(
        (Path(__file__).parents[2] / "twin/scenario/report.schema.json").read_text()
    )
    assert "people" in schema["properties"]
    assert "PeopleSection" in schema["$defs"] and "DeviationCatch" in schema["$defs"]


def test_the_html_report_shows_the_people_section() -> None:
    from twin.scenario.html import _people
    from twin.scenario.report import PeopleSection, TraineeAction

    refused = TraineeAction(
        seq=1,
        person="OP-ANNA",
        action="consume_lot",
        target="1 of LW-5510 on JO-B/1",
        t=60.0,
        wall_s=1.0,
        accepted=False,
        status=409,
        rule="MATERIAL_NOT_ON_BOM",
    )
    section = PeopleSection(caught_means="caught means...", trainees=[], actions=[refused])
    report = Report.model_construct(people=section)
    html = _people(report)
    assert "MATERIAL_NOT_ON_BOM" in html and "1 of LW-5510 on JO-B/1" in html
    assert _people(Report.model_construct(people=None)) == ""


def test_the_login_sheet_names_the_trainer_and_each_person_never_a_sites_admin(
    ctx: RunContext, tmp_path: Path
) -> None:
    """``mestwin run --dashboard`` prints where to log in and as whom (issue 15)."""
    from twin.scenario.mes_core_launch import MesCoreLauncher, MesCoreRun
    from twin.scenario.sut import PersonAccount, RunControlAccess, SutEnvironment

    people = (PersonAccount("QA-EVA", "qa", "eva-secret"),)
    access = RunControlAccess("http://127.0.0.1:1", "token", "trainer-pw")
    for mes_url in (None, "http://mes.site:8000"):
        env = SutEnvironment(ctx.plant, people, tmp_path, mes_url=mes_url)
        launcher = MesCoreLauncher(env)
        sut = MesCoreRun(launcher, mes_url or "http://127.0.0.1:2", orders="rest")
        sheet = "\n".join(sut.login_sheet("http://127.0.0.1:8050", access))
        assert "trainer console: http://127.0.0.1:8050/trainer  password: trainer-pw" in sheet
        assert "QA-EVA       eva-secret   qa (Eva Lind)" in sheet
        assert "OP-ANNA      mestwin      operator (Anna Berg)" in sheet
        own = f"password {launcher.admin_password}" in sheet
        assert own == (mes_url is None), sheet  # a site's admin password is never printed
        assert "token" not in sheet
