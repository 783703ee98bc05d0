"""The system under test as a plug-in: an adapter registered through the
``mestwin.sut_adapters`` entry point drives a scenario run with the runner unchanged, and
what the adapter cannot do is reported as not checked / not injected, never as passed.

The toy MES lives in a module and a ``*.dist-info`` (with ``entry_points.txt``) written to
a temporary folder put on ``sys.path``: exactly how an installed third-party package
registers itself. Runs in about 10 s (one 20-minute bottling scenario, direct link).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from plant_models.scenario import SCENARIOS_DIR
from twin.scenario.report import load_schema
from twin.scenario.runner import RunOptions, ScenarioError, run_scenario
from twin.scenario.sut import CAPABILITIES, SystemUnderTest, capabilities
from twin.scenario.sut_registry import ENTRY_POINT_GROUP, adapter_names, resolve

TOY_MODULE = '''
"""A toy MES: orders in, records out, and a collector endpoint; nothing else."""

from datetime import UTC, datetime

from mes_core.schemas.plant_events import CountEvent, IngestResult
from twin.scenario.reconcile import LabourHours, Records, UnitRecord
from twin.scenario.sut import Answer, IngestStats, OrderView, SutSettingsError


class ToyMes:
    def __init__(self, greeting):
        self.greeting = greeting
        self.sent = {}
        self.units = {}
        self.seen = set()
        self.duplicates = 0

    def describe(self):
        return f"toy MES ({self.greeting})"

    def version(self):
        return "toy 0.1"

    def wait_ready(self, timeout):
        return None

    def load_master_data(self, plant):
        self.units = {wu.code: [0, 0] for wu in plant.all_work_units()}

    def send_order(self, order):
        self.sent[order.id] = order
        return Answer(True)

    def orders(self):
        return [OrderView(o.id, o.product, o.quantity, "released") for o in self.sent.values()]

    def records(self, plant, until):
        # Labour booked with the operations (none were run: 0 h on the order), read back
        # without the labour capability, as Tryton's timesheets are.
        return Records(
            work_units={
                wu: UnitRecord(good=g, scrap=s, state_seconds={})
                for wu, (g, s) in self.units.items()
            },
            labour=LabourHours(by_order={o: 0.0 for o in self.sent}),
            labour_from_operations=True,
        )

    def post_events(self, events):
        fresh = 0
        for e in events:
            key = (e.source, e.sequence)
            if key in self.seen:
                self.duplicates += 1
                continue
            self.seen.add(key)
            fresh += 1
            if isinstance(e, CountEvent):
                self.units[e.work_unit][0] += e.good
                self.units[e.work_unit][1] += e.scrap
        return IngestResult(
            accepted=fresh, duplicates=len(events) - fresh, received_at=datetime.now(UTC)
        )

    def ingest_stats(self):
        return IngestStats(accepted=len(self.seen), duplicates=self.duplicates)

    def close(self):
        return None


def open_toy(settings, env):
    unknown = sorted(set(settings) - {"greeting"})
    if unknown:
        raise SutSettingsError(unknown[0], f"the toy takes no setting {unknown[0]!r}")
    return ToyMes(settings.get("greeting", "hello"))


class HalfToy(ToyMes):
    """Labour begun and left (two of its five methods) and a kill switch that is no
    method: half capabilities, which the runner refuses before the run starts."""

    kill_process = None

    def clock_in(self, person, at):
        return None

    def clock_out(self, person, at):
        return None


def open_half_toy(settings, env):
    return HalfToy("half")
'''

SCENARIO = """\
name: toy-mes
plant: {plant}
duration: 20m
seed: 3
link: direct
system_under_test: {{adapter: toy, greeting: bonjour}}
erp:
  plant_orders: false
  orders:
    - {{id: JO-T1, product: WATER-500, quantity: 60}}
people:
  - {{id: OP-ANNA, role: operator}}
timeline:
  - {{type: mes_restart, at: 5m}}
  - {{type: wrong_lot, name: wl, at: 6m, order: JO-T1, lot: JB-3301}}
expectations:
  - {{type: order_state, order: JO-T1, state: released}}
  - {{type: events}}
  - {{type: oee, line: BTL1, min: 0.1}}
  - {{type: labour_hours, order: JO-T1, max: 0.5}}
"""


@pytest.fixture
def toy_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "toy_mes_adapter.py").write_text(TOY_MODULE)
    dist = site / "toy_mes_adapter-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-mes-adapter\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ntoy = toy_mes_adapter:open_toy\n"
        "half = toy_mes_adapter:open_half_toy\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "toy_mes_adapter", raising=False)
    return site


def _scenario(tmp_path: Path, text: str = SCENARIO) -> Path:
    plant = (SCENARIOS_DIR.parent / "bottling_line.yaml").resolve()
    path = tmp_path / "toy.yaml"
    path.write_text(text.format(plant=plant))
    return path


def test_an_adapter_registered_through_the_entry_point_is_found(toy_installed: Path) -> None:
    assert "toy" in adapter_names()
    assert "mes_core" in adapter_names()
    assert resolve("toy").__module__ == "toy_mes_adapter"


def test_the_runner_drives_a_toy_adapter_unchanged_and_never_passes_what_it_cannot_check(
    toy_installed: Path, tmp_path: Path
) -> None:
    result = run_scenario(
        RunOptions(scenario=_scenario(tmp_path), report_dir=tmp_path / "r", progress=False)
    )
    report = result.report
    assert report.system_under_test == "toy MES (bonjour)"
    # Orders in, records out: what the toy does is checked for real.
    by_type = {e.type: e for e in report.expectations}
    assert by_type["order_state"].status == "passed"
    assert by_type["events"].status == "passed", by_type["events"].detail
    # Labour read back in its records (no labour capability) is checked on them.
    assert by_type["labour_hours"].status == "passed", by_type["labour_hours"].detail
    counts = [r for r in report.reconciliation.rows if r.entity == "work_unit"]
    assert counts and all(r.difference == 0 for r in counts if r.quantity in ("good", "scrap"))
    assert any(r.twin for r in counts if r.quantity == "good"), "the plant made nothing"
    # What it cannot do is said, with the reason, and never passes.
    oee = by_type["oee"]
    assert oee.status == "not_checked" and not oee.passed
    assert "toy adapter offers no ISO 22400-2 KPIs" in oee.detail
    (wl,) = report.deviations
    assert wl.outcome == "not_injected" and "operation starts" in wl.message
    (restart,) = report.faults
    assert restart.detail.startswith("not injected: the toy adapter offers no killing")
    assert not report.passed and result.exit_code == 1
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    jsonschema.validate(data, load_schema())


def test_a_toy_with_no_optional_capability_is_still_a_system_under_test(
    toy_installed: Path,
) -> None:
    import toy_mes_adapter  # type: ignore[import-not-found]

    toy = toy_mes_adapter.ToyMes("hi")
    assert isinstance(toy, SystemUnderTest)
    assert capabilities(toy) == ["event_ingest"]
    assert set(capabilities(toy)) < set(CAPABILITIES)


def test_an_unknown_adapter_is_a_scenario_error_naming_file_and_line(tmp_path: Path) -> None:
    path = _scenario(tmp_path, SCENARIO.replace("adapter: toy", "adapter: nonesuch"))
    with pytest.raises(ScenarioError) as err:
        run_scenario(RunOptions(scenario=path, report_dir=tmp_path / "r", progress=False))
    (problem,) = err.value.problems
    assert f"{path}:6: system_under_test.adapter: no system-under-test adapter 'nonesuch'" in (
        problem
    )


def test_settings_an_adapter_refuses_are_a_scenario_error_naming_the_field(
    tmp_path: Path,
) -> None:
    text = SCENARIO.replace(
        "{{adapter: toy, greeting: bonjour}}", "{{adapter: mes_core, colour: red}}"
    )
    path = _scenario(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        run_scenario(RunOptions(scenario=path, report_dir=tmp_path / "r", progress=False))
    (problem,) = err.value.problems
    assert f"{path}:6: system_under_test.colour: mes_core takes no setting 'colour'" in problem


@pytest.mark.parametrize(
    ("limits", "says"),
    [
        ("[{{routing: WATER-500, characteristic: nonesuch, baseline_n: 5}}]", "no characteristic"),
        ("[{{routing: WATER-500, characteristic: fill_weight, centre: 500}}]", "centre and sigma"),
        ("{{a: 1}}", "must be a list"),
    ],
)
def test_mes_core_spc_limits_must_name_a_characteristic_of_a_routing(
    tmp_path: Path, limits: str, says: str
) -> None:
    text = SCENARIO.replace(
        "{{adapter: toy, greeting: bonjour}}", f"{{{{adapter: mes_core, spc_limits: {limits}}}}}"
    )
    path = _scenario(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        run_scenario(RunOptions(scenario=path, report_dir=tmp_path / "r", progress=False))
    (problem,) = err.value.problems
    assert f"{path}:6: system_under_test.spc_limits: " in problem and says in problem


def test_the_documented_minimal_adapter_is_a_system_under_test_with_no_options() -> None:
    """docs/TESTING_YOUR_MES.md's example is real code: it loads and satisfies the
    Protocol, and its factory refuses a missing URL naming the setting."""
    from twin.scenario.sut import SutEnvironment, SutSettingsError

    doc = (Path(__file__).parents[2] / "docs" / "TESTING_YOUR_MES.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "TESTING_YOUR_MES.md", "exec"), namespace)
    mes = namespace["MyMes"]("http://mes.example")  # type: ignore[operator]
    assert isinstance(mes, SystemUnderTest)
    assert capabilities(mes) == []
    env = SutEnvironment(plant=None, people=(), report_dir=Path("."))  # type: ignore[arg-type]
    with pytest.raises(SutSettingsError) as err:
        namespace["open_my_mes"]({}, env)  # type: ignore[operator]
    assert err.value.field == "url"


def test_mestwin_run_takes_another_adapter_for_a_shipped_scenario(tmp_path: Path) -> None:
    """``--adapter`` overrides the scenario's system under test (exit 2 naming it when
    none such is installed); ``--link`` must be one the bench knows."""
    from twin.scenario.cli import run_command

    shipped = SCENARIOS_DIR / "clean_bottling_day.yaml"
    common = (shipped, tmp_path / "r", None, None, None, None, False)
    assert run_command(*common, adapter="nonesuch") == 2
    assert run_command(*common, link="carrier-pigeon") == 2


def test_a_run_with_no_expectations_exits_not_checked_never_passed(
    toy_installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``mestwin run`` on a scenario that checks nothing: verdict NOT CHECKED, exit 3."""
    from twin.scenario.cli import run_command

    text = SCENARIO.split("timeline:")[0].replace("duration: 20m", "duration: 2m")
    path = _scenario(tmp_path, text)
    assert run_command(path, tmp_path / "r", None, None, None, None, False) == 3
    assert "NOT CHECKED (nothing was checked: the scenario has no expectations)" in (
        capsys.readouterr().err
    )
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert (data["verdict"], data["passed"]) == ("not_checked", False)


def test_an_adapter_with_half_a_capability_is_refused_at_load_naming_what_is_missing(
    toy_installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not silently treated as lacking labour, and not calling a None mid-run: the run
    does not start (exit 1), and the message names each capability and what it lacks."""
    from twin.scenario.cli import run_command

    text = SCENARIO.replace("adapter: toy, greeting: bonjour", "adapter: half")
    path = _scenario(tmp_path, text)
    assert run_command(path, tmp_path / "r", None, None, None, None, False) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "adapter 'half' returned HalfToy, which implements only part of the optional " in err
    assert (
        "labour (LabourCapability): missing or not callable: labour_records, start_labour, "
        "stop_labour" in err
    )
    assert "process_control (ProcessControl): missing or not callable: kill_process, " in err
    assert not (tmp_path / "r" / "report.json").exists()
