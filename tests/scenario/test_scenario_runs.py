"""End-to-end scenario runs: the twin engine against a real mes_core started as a child
process on SQLite, through the runner's system-under-test adapter.

Shipped scenarios run shortened (a few simulated hours, order quantities scaled down) so
the whole module stays within its time budget; expectations that only make sense for a
full day (OEE and throughput bounds of a full shift pattern) are left out of the shortened
copies, everything else is checked as shipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from support import postgres_url, require, throwaway_postgres

from plant_models.scenario import SCENARIOS_DIR, DeviationRefused, load_scenario
from twin.scenario.evidence import verify
from twin.scenario.report import load_schema
from twin.scenario.runner import RunOptions, RunResult, run_scenario

pytestmark = pytest.mark.slow

FULL_DAY_ONLY = {"oee", "throughput"}


def shortened(tmp_path: Path, name: str, duration: str, **changes: Any) -> Path:
    """A copy of a shipped scenario, shortened, next to its (absolute) plant model."""
    data = yaml.safe_load((SCENARIOS_DIR / f"{name}.yaml").read_text())
    data["plant"] = str((SCENARIOS_DIR.parent / f"{data['plant']}.yaml").resolve())
    data["duration"] = duration
    data["expectations"] = [e for e in data["expectations"] if e["type"] not in FULL_DAY_ONLY]
    data.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(path: Path, tmp_path: Path, order_scale: float = 1.0) -> RunResult:
    return run_scenario(
        RunOptions(
            scenario=path,
            report_dir=tmp_path / "report",
            order_scale=order_scale,
            progress=False,
        )
    )


def assert_passed(result: RunResult) -> dict[str, Any]:
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed)
    folder = result.report_dir
    data: dict[str, Any] = json.loads((folder / "report.json").read_text())
    jsonschema.validate(data, load_schema())
    assert (folder / "junit.xml").read_text().count("<testcase") == len(data["expectations"])
    assert "plotly" in (folder / "report.html").read_text()
    pack = verify(folder)  # sealed last: the manifest covers every file of the run
    assert pack.ok and {"report.json", "junit.xml"} <= set(
        json.loads((folder / "manifest.json").read_text())["files"]
    ), (pack.changed, pack.added, pack.missing, pack.problems)
    return data


def assert_operation_times_reconciled(data: dict[str, Any]) -> None:
    """Every operation's start and end, as the MES recorded them, lie on the plant's
    timeline: within the scenario's tick of when the bench's people started and completed
    it (issue 13; wall-clock or compressed stamps are off by hours)."""
    rows = [r for r in data["reconciliation"]["rows"] if r["entity"] == "operation"]
    starts = [r for r in rows if r["quantity"].startswith("start")]
    ends = [r for r in rows if r["quantity"].startswith("end")]
    assert starts and ends, "no operation times reconciled"
    assert all(r["twin"] is not None for r in starts)
    assert [r for r in rows if not r["matches"]] == []
    # Every other timestamp the MES keeps of the run lies on the plant's timeline.
    timeline = {r["id"]: r for r in data["reconciliation"]["rows"] if r["entity"] == "timeline"}
    assert {"consumptions", "job order start/end", "attendance", "labour bookings"} <= set(timeline)
    assert [r for r in timeline.values() if not r["matches"]] == []


def assert_plausible_kpis(data: dict[str, Any]) -> None:
    """ISO 22400-2:2014 clause 6: availability, effectiveness, quality ratio and OEE of a
    clean run are fractions, each at most 100 %, and none is flagged as master data."""
    for k in data["kpis"]:
        assert k["master_data_errors"] == [], k["master_data_errors"]
        for factor in ("availability", "performance", "quality", "oee"):
            assert k[factor] is None or 0 <= k[factor] <= 1, (k["id"], factor, k[factor])


def assert_labour_reconciled(data: dict[str, Any]) -> None:
    """The bench's operators clocked in and booked labour, and the MES's hours per person
    and per job order are theirs (issue 13: attendance and labour_booking not empty)."""
    rows = [r for r in data["reconciliation"]["rows"] if r["quantity"].endswith(" hours")]
    attendance = [r for r in rows if r["quantity"] == "attendance hours"]
    labour = [r for r in rows if r["quantity"] == "labour hours" and r["entity"] == "job_order"]
    assert attendance and labour, "no attendance or labour reconciled"
    assert all(r["mes"] > 0 for r in attendance + labour)
    assert [r for r in rows if not r["matches"]] == []


def test_clean_bottling_day_reconciles_exactly(tmp_path: Path) -> None:
    path = shortened(tmp_path, "clean_bottling_day", "2h", drain="2h")
    data = assert_passed(run(path, tmp_path, order_scale=0.1))
    assert data["reconciliation"]["exact"] and data["reconciliation"]["mismatches"] == []
    assert_operation_times_reconciled(data)
    assert_labour_reconciled(data)
    booked_at = [
        r for r in data["reconciliation"]["rows"] if r["quantity"].startswith("consumed at")
    ]
    assert booked_at, "no genealogy edge reconciled at its consuming work unit"
    assert {o["state"] for o in data["orders"]} == {"completed"}
    assert data["events"]["lost"] == 0 and data["events"]["duplicated"] == 0
    kpis = {k["id"]: k for k in data["kpis"] if k["source"] == "mes"}
    # A line's good quantity is what leaves it (ISO 22400-2 GQ of the line measured as one
    # work unit): the case packer's bottles, not the sum over four machines.
    assert kpis["BTL1"]["good"] == kpis["BTL1-CASEPACKER"]["good"] > 0
    assert kpis["BTL1"]["basis"] == (
        "good = what left the line at BTL1-CASEPACKER; time, PRU and pace of its "
        "constraint BTL1-FILLER"
    )
    assert_plausible_kpis(data)


def test_bottling_with_faults_still_reconciles_exactly(tmp_path: Path) -> None:
    shipped = yaml.safe_load((SCENARIOS_DIR / "bottling_with_faults.yaml").read_text())
    # On SQLite the database cannot be cut: this copy marks that fault optional, so the
    # run passes and only notes it (the shipped file fails there, see the test below).
    timeline = [
        {**e, "optional": True} if e["type"] == "database_unreachable" else e
        for e in shipped["timeline"]
    ]
    path = shortened(tmp_path, "bottling_with_faults", "4h", drain="1h", timeline=timeline)
    data = assert_passed(run(path, tmp_path, order_scale=0.1))
    assert any(n.startswith("optional database_unreachable") for n in data["notes"])
    kinds = {f["type"] for f in data["faults"]}
    assert {"breakdown", "opcua_drop", "mes_restart", "opcua_server_restart"} <= kinds
    assert data["events"]["replayed"] > 0  # the drop and the MES kill made the link replay
    assert data["reconciliation"]["exact"]
    # Both at once: the Sparkplug B mirror's subscriber ends with the plant's counters.
    mirror = data["mirror"]
    assert mirror["verdict"] == "passed", mirror["detail"]
    assert all(r["matches"] for r in mirror["rows"])
    made = {r["work_unit"]: r["twin"] for r in mirror["rows"] if r["quantity"] == "processed"}
    assert made["BTL1-FILLER"] > 0
    assert mirror["received"]["messages"] > mirror["published"]["births"] > 0
    assert mirror["received"]["gaps"] == 0


def assert_each_deviation_answered_by_its_rule(data: dict[str, Any], path: Path) -> None:
    """Each deviation's recorded MES answer is exactly the rule its scenario names (the
    expectation matches a substring; here nothing else passes): never INVALID_TRANSITION
    or an unrelated SEQUENCE from a state the bench happened to hit."""
    named = {
        x.deviation: x.rule
        for x in load_scenario(path).expectations
        if isinstance(x, DeviationRefused) and x.rule
    }
    answered = {d["name"]: d["rule"] for d in data["deviations"] if d["name"] in named}
    assert answered == named


def test_tablet_batch_catches_every_deviation(tmp_path: Path) -> None:
    # An hour to drain: the first batch finishes (its genealogy and lots are checked).
    path = shortened(tmp_path, "tablet_batch_deviations", "12h30m", drain="1h")
    data = assert_passed(run(path, tmp_path))
    assert_each_deviation_answered_by_its_rule(data, path)
    # The drift is caught on the MES's own evidence (its out-of-spec nonconformance), and
    # the non-QA signer (when: on_hold) tries to sign that very nonconformance.
    by_name = {d["name"]: d for d in data["deviations"]}
    signed = by_name["non-qa-signs-disposition"]["target"].rsplit("nc:", 1)[-1]
    assert signed.startswith("NC-") and signed in by_name["tablet-weight-drift"]["message"]
    assert_operation_times_reconciled(data)
    outcomes = {d["name"]: (d["outcome"], d["rule"]) for d in data["deviations"]}
    assert outcomes == {
        "wrong-material-lot": ("refused", "MATERIAL_NOT_ON_BOM"),
        "expired-api-lot": ("refused", "LOT_EXPIRED"),
        "uncertified-start": ("refused", "CERTIFICATION"),
        "coat-before-compress": ("refused", "SEQUENCE"),
        "tablet-weight-drift": ("caught", "spc"),
        "non-qa-signs-disposition": ("refused", "FORBIDDEN"),
        "booth-calibration-lapsed": ("refused", "CALIBRATION_DUE"),
    }
    recorded = {d["name"] for d in data["deviations"] if d["recorded"]}
    assert recorded == {
        "wrong-material-lot",
        "expired-api-lot",
        "uncertified-start",
        "coat-before-compress",
        "non-qa-signs-disposition",
        "booth-calibration-lapsed",
    }
    # Each recorded refusal cites its audit entry (id and hash), as the verdict's evidence.
    cited = {d["name"]: d["audit_entry"] for d in data["deviations"] if d["audit_entry"]}
    assert set(cited) == recorded and all(" hash " in e for e in cited.values())
    # The traceability matrix covers every requirement of the shipped scenario, all passed.
    assert {r["requirement"]: r["verdict"] for r in data["traceability"]} == {
        req: "passed"
        for req in (
            "URS-010",
            "URS-011",
            "URS-020",
            "URS-021",
            "URS-030",
            "URS-012",
            "URS-031",
            "URS-022",
            "URS-040",
            "URS-041",
            "URS-013",
            "URS-032",
            "URS-033",
            "URS-050",
            "URS-060",
        )
    }
    assert_plausible_kpis(data)
    # Every custom kind is checked on the MES's own records, none left unchecked.
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in data["expectations"]:
        by_type.setdefault(e["type"], []).append(e)
    custom = {"genealogy_link", "labour_hours", "audit_entry", "spc_rule", "signature"}
    assert custom | {"state_at", "expression"} <= set(by_type)
    assert all(e["status"] == "passed" for e in data["expectations"])
    # SPC caught the creep before the spec did: no tablet weight result out of spec.
    assert "Nelson rule 1" in by_type["spc_rule"][0]["detail"]
    assert "SPC Nelson rule" in by_name["tablet-weight-drift"]["message"]
    assert "out of specification" not in by_name["tablet-weight-drift"]["message"]
    held = next(e for e in by_type["state_at"] if "held" in e["name"])
    assert held["detail"].startswith("job order B-26-0101 was held at 6h15m")
    assert "dated as nonconformance NC-" in held["evidence"][0]


def test_reference_plant_load_run(tmp_path: Path) -> None:
    path = shortened(tmp_path, "reference_plant_load", "10m")
    data = assert_passed(run(path, tmp_path))
    assert data["events"]["ingested"] > 500
    assert len({r["id"] for r in data["reconciliation"]["rows"]}) > 200
    # Cut to 10 min, the plant stops with lots drawn but not yet booked (operators book
    # every 15 min): the people close out after it stopped, more than a tick later, and
    # clock out then. Those records lie on the run's timeline, which ends with the
    # close-out (issue 13): each is checked, and none is off it.
    timeline = {r["id"]: r for r in data["reconciliation"]["rows"] if r["entity"] == "timeline"}
    assert {"attendance", "consumptions", "labour bookings"} <= set(timeline)
    assert all(r["matches"] and r["mes"] == 0 for r in timeline.values()), timeline
    close_out = [n for n in data["notes"] if n.startswith("MES timestamps checked")]
    assert len(close_out) == 1 and "the plant stopped at 600 s" in close_out[0], close_out
    closed_at = float(close_out[0].rsplit("until ", 1)[1].split(" s")[0])
    assert closed_at > 600 + 120  # the case at stake: records after the plant's end + tick


DB_FAULTS = """\
name: database-faults
plant: {plant}
duration: 2h
drain: 1h
seed: 5
tick: 2m
erp:
  plant_orders: false
  orders:
    - {{id: JO-P1, product: WATER-500, quantity: 400}}
    - {{id: JO-P2, product: WATER-500, quantity: 400, release_at: 40m}}
people:
  - {{id: OP-ANNA, role: operator, behaviour: {{reaction: 2m}}}}
timeline:
  - {{type: database_unreachable, at: 35m, duration: 3m}}
  - {{type: mes_restart, at: 50m, downtime: 1m}}
expectations:
  - {{type: all_orders_completed}}
  - {{type: reconciliation_exact}}
  - {{type: events, max_lost: 0, max_duplicated: 0}}
"""


def test_postgresql_cut_and_mes_kill_still_reconcile_exactly(tmp_path: Path) -> None:
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    plant = (SCENARIOS_DIR.parent / "bottling_line.yaml").resolve()
    path = tmp_path / "db.yaml"
    path.write_text(DB_FAULTS.format(plant=plant))
    with throwaway_postgres("mestwin_scenario") as url:
        result = run_scenario(
            RunOptions(
                scenario=path, report_dir=tmp_path / "report", database_url=url, progress=False
            )
        )
    data = assert_passed(result)
    cut = next(f for f in data["faults"] if f["type"] == "database_unreachable")
    # Really injected, not skipped as on SQLite.
    assert not cut["detail"].startswith("not injected"), cut["detail"]
    assert data["database"].startswith("postgresql+psycopg://")


IMPOSSIBLE = """\
name: built-to-fail
plant: {plant}
duration: 20m
seed: 1
erp:
  plant_orders: false
  orders:
    - {{id: JO-T1, product: WATER-500, quantity: 60}}
people:
  - {{id: OP-ANNA, role: operator, behaviour: {{reaction: 1m}}}}
expectations:
  - {{type: reconciliation_exact}}
  - {{type: order_state, order: JO-T1, state: closed}}
"""


def _mestwin(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from mestwin.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_a_fault_that_cannot_be_injected_fails_its_scenario_unless_optional(
    tmp_path: Path,
) -> None:
    """The database of the embedded SQLite MES cannot be cut: the scenario fails, naming
    the fault and why; marked optional, the same run passes and notes it. ~20 s."""
    base = yaml.safe_load(IMPOSSIBLE.format(plant=SCENARIOS_DIR.parent / "bottling_line.yaml"))
    base["link"] = "direct"
    base["expectations"] = [{"type": "reconciliation_exact"}]
    for optional, code in ((False, 1), (True, 0)):
        cut = {"type": "database_unreachable", "at": "5m", "duration": "1m"}
        path = tmp_path / f"db-{optional}.yaml"
        data = dict(base, timeline=[{**cut, "optional": True} if optional else cut])
        path.write_text(yaml.safe_dump(data))
        result = run(path, tmp_path / str(optional))
        assert result.exit_code == code
        timeline = [e for e in result.report.expectations if e.type == "timeline"]
        if optional:
            assert timeline == []
            assert any("optional database_unreachable" in n for n in result.report.notes)
        else:
            (failed,) = timeline
            assert failed.name == "database_unreachable at 300 s injected"
            assert "embedded SQLite" in failed.detail and not failed.passed


TRIGGERED = """\
name: triggered-deviations
plant: {plant}
duration: 40m
seed: 1
link: direct
erp:
  plant_orders: false
  orders:
    - {{id: JO-T1, product: WATER-500, quantity: 60}}
people:
  - {{id: OP-ANNA, role: operator, behaviour: {{reaction: 1m}}}}
  - {{id: OP-DAN, role: operator}}
timeline:
  - {{type: uncertified_operator, name: uc, when: operation_startable, order: JO-T1,
     operation: FILL, person: OP-DAN}}
  - {{type: wrong_lot, name: wl, when: operation_running, at: 2m, order: JO-T1,
     operation: CAP, lot: JB-3301}}
  - {{type: wrong_lot, name: drawn, when: lot_consumed, order: JO-T1, operation: LABEL,
     lot: JB-3301}}
  - {{type: wrong_lot, name: never, when: operation_startable, at: 39m, order: JO-T1,
     operation: FILL, lot: JB-3301, optional: true}}
expectations:
  - {{type: deviation_refused, deviation: uc, rule: CERTIFICATION}}
  - {{type: deviation_refused, deviation: wl, rule: MATERIAL_NOT_ON_BOM}}
  - {{type: deviation_refused, deviation: drawn, rule: MATERIAL_NOT_ON_BOM}}
"""


def test_deviations_on_an_event_test_the_rule_they_name(tmp_path: Path) -> None:
    """``when:`` injects a deviation on the plant's event: the uncertified start comes when
    the filler took the order and nobody started it (CERTIFICATION, not SEQUENCE or
    INVALID_TRANSITION); the wrong lots while the operation runs and when the machine
    drew a lot. One whose event never comes is not injected (optional here). ~30 s."""
    path = tmp_path / "triggered.yaml"
    path.write_text(TRIGGERED.format(plant=SCENARIOS_DIR.parent / "bottling_line.yaml"))
    result = run(path, tmp_path)
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed)
    by_name = {d.name: d for d in result.report.deviations}
    assert by_name["uc"].outcome == "refused" and by_name["uc"].rule == "CERTIFICATION"
    assert by_name["wl"].at >= 120 and by_name["wl"].rule == "MATERIAL_NOT_ON_BOM"
    assert by_name["drawn"].target == "lot JB-3301 for JO-T1/LABEL"
    assert by_name["never"].outcome == "not_injected"
    assert "did not happen to JO-T1/FILL after 2340 s" in by_name["never"].message


def test_a_scenario_built_to_fail_exits_1_and_says_why(tmp_path: Path) -> None:
    plant = (SCENARIOS_DIR.parent / "bottling_line.yaml").resolve()
    path = tmp_path / "fail.yaml"
    path.write_text(IMPOSSIBLE.format(plant=plant))
    proc = _mestwin("run", str(path), "--report-dir", str(tmp_path / "out"), "--no-progress")
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 1, err
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    failed = [e for e in data["expectations"] if not e["passed"]]
    assert [e["name"] for e in failed] == ["order JO-T1 is closed"]
    assert failed[0]["detail"].startswith("job order JO-T1 is ")
    assert failed[0]["detail"].endswith(", expected closed")
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert 'failures="1"' in junit and "expected closed" in junit


def test_a_broken_scenario_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "name: broken\nplant: bottling_line\nduration: 1h\ntimeline:\n"
        "  - {type: opcua_drop, at: 10m, duration: forever}\n"
    )
    proc = _mestwin("run", str(path), "--report-dir", str(tmp_path / "out"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"{path}:5: timeline.0.opcua_drop.duration:" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_scenario_naming_what_the_plant_lacks_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "unknown.yaml"
    path.write_text(
        "name: unknown\nplant: bottling_line\nduration: 1h\ntimeline:\n"
        "  - {type: breakdown, at: 10m, work_unit: BTL9-NOPE, duration: 5m}\n"
    )
    proc = _mestwin("run", str(path), "--report-dir", str(tmp_path / "out"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"{path}:5: timeline.0.work_unit: no work unit 'BTL9-NOPE'" in err


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_stops_the_run_and_leaves_no_process(
    tmp_path: Path, sig: signal.Signals, code: int, word: str
) -> None:
    path = SCENARIOS_DIR / "tablet_batch_deviations.yaml"
    proc = _mestwin(
        "run",
        str(path),
        "--report-dir",
        str(tmp_path / "out"),
        "--speed",
        "60",
        "--no-progress",
    )
    log = tmp_path / "out" / "mes.log"
    children: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (log.exists() and _children(proc.pid)):
            time.sleep(0.2)
        time.sleep(3)  # the MES is up and the plant runs, paced
        children = _children(proc.pid)
        assert children, "the run started no MES"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        # Failed or timed out: leave nothing behind (an orphan holding the run's pipes
        # kept pytest from exiting).
        if proc.poll() is None:
            for pid in [*_children(proc.pid), *children]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert word in err
    assert "Traceback" not in err
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    if os.name == "posix":
        assert _children(proc.pid) == []
