"""B2MML as the vendor-neutral channel: the bench's ERP side builds the schedule, reads the
performance, and mes_core's adapter in ``orders: b2mml`` mode runs on those two documents
alone; a newcomer loads a plant into a fresh MES and imports the shipped ERP samples.

The documents are checked against MESA's XSDs and against mes_core's own reader and writer
(two independent implementations of the same mapping). Runtime: about 25 s (one fresh MES
on SQLite for the module, where loading the plants' people, password hashing, dominates;
one 2-hour scenario run in b2mml mode, about 13 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from mes_core.client import MesClient
from mes_core.demo import ServerThread
from mes_core.erp.b2mml import SCHEDULE_XSD, schema
from mes_core.erp.performance import (
    JobOrderActual,
    MaterialActual,
    SegmentActual,
    build_performance,
)
from mes_core.erp.schedule import parse_schedule
from mes_core.persistence.migrate import upgrade
from mes_core.schemas.execution import OutputLot
from mes_core.settings import Settings
from mestwin.cli import build_app
from plant_models.loader import load_plant_model
from plant_models.scenario import SCENARIOS_DIR, load_scenario
from plant_models.schema import PlantModel
from twin.scenario.b2mml_channel import (
    B2MMLChannelError,
    build_schedule,
    parse_performance,
)
from twin.scenario.loading import scenario_orders
from twin.scenario.reconcile import OrderRecord
from twin.scenario.runner import RunOptions, run_scenario
from twin.scenario.sut import OrderRequest
from twin.scenario.sut_mes_core import MesCoreSut

ROOT = Path(__file__).resolve().parents[2]
ERP_SAMPLES = ROOT / "plant_models" / "erp"
ADMIN_PASSWORD = "admin-b2mml-tests"
NS = {"b": "http://www.mesa.org/xml/B2MML"}


def _bottling() -> PlantModel:
    return load_plant_model(ROOT / "plant_models" / "bottling_line.yaml")


def test_schedule_from_the_runners_orders_is_xsd_valid_and_reads_back_as_sent() -> None:
    plant = _bottling()
    orders = scenario_orders(load_scenario(SCENARIOS_DIR / "clean_bottling_day.yaml"), plant)
    document = build_schedule(orders, plant, schedule_id="DAY-1")
    schema(SCHEDULE_XSD).assertValid(etree.fromstring(document))
    parsed = parse_schedule(document)  # mes_core's reader, an independent implementation
    assert [o.number for o in parsed.job_orders] == [o.id for o in orders]
    for sent, read in zip(orders, parsed.job_orders, strict=True):
        product = plant.product(sent.product)
        assert (read.product, read.operations_definition) == (product.material, product.id)
        assert (read.quantity, read.request_state, read.state) == (
            sent.quantity,
            "Released",
            "released",
        )
        assert read.planned_start == plant.plant.start + timedelta(seconds=sent.release_at)
        if sent.due is not None:
            assert read.due == plant.plant.start + timedelta(seconds=sent.due)
    waiting = parse_schedule(build_schedule(orders[:1], plant, schedule_id="D", released=False))
    assert waiting.job_orders[0].state == "planned"


def test_schedule_refuses_an_order_of_a_product_the_plant_does_not_make() -> None:
    plant = _bottling()
    with pytest.raises(KeyError, match="no product 'COLA'"):
        build_schedule([OrderRequest("JO-9", "COLA", 5, 0.0)], plant, schedule_id="X")


def _actual(state: str = "Completed") -> JobOrderActual:
    start = _bottling().plant.start
    end = start + timedelta(hours=1)
    return JobOrderActual(
        number="JO-1",
        operations_definition="WATER-500",
        start=start,
        end=end,
        state=state,
        segments=[
            SegmentActual(
                segment_id="1",
                process_segment="FILL",
                start=start,
                end=end,
                equipment=["BTL1-FILLER"],
                materials=[
                    MaterialActual("PREFORM-500", 60, "ea", "Consumed", lot="PF-1"),
                    # A share of a case per bottle: the quantity must come back to the last bit.
                    MaterialActual("CASE-12", 41.291666666666664, "ea", "Consumed", lot="CS-1"),
                ],
                good=100,
                scrap=2,
            ),
            SegmentActual(
                segment_id="2",
                process_segment="CAP",
                start=start,
                end=end,
                equipment=["BTL1-CAPPER"],
                materials=[
                    MaterialActual("CAP-28", 100, "ea", "Consumed", lot="CAP-1"),
                    MaterialActual("FG-WATER-500", 99, "ea", "Produced", lot="FG-1"),
                ],
                good=99,
                scrap=1,
            ),
        ],
    )


def test_performance_reads_into_the_reconciliations_per_order_shape() -> None:
    document = build_performance([_actual()], performance_id="PERF-9")  # mes_core's writer
    performance = parse_performance(document)
    assert performance.records() == {
        "JO-1": OrderRecord(
            good=99,
            scrap=3,
            lots_consumed={"PF-1": 60, "CS-1": 41.291666666666664, "CAP-1": 100},
            lots_produced={"FG-1": 99},
        )
    }
    assert performance.genealogy() == {("PF-1", "FG-1"), ("CS-1", "FG-1"), ("CAP-1", "FG-1")}
    order = performance.orders["JO-1"]
    assert order.state == "completed"
    assert [(s.process_segment, s.equipment) for s in order.segments] == [
        ("FILL", ["BTL1-FILLER"]),
        ("CAP", ["BTL1-CAPPER"]),
    ]
    running = parse_performance(build_performance([_actual("Running")], performance_id="P"))
    assert running.orders["JO-1"].state == "running"


def test_performance_genealogy_through_intermediate_lots_and_times_in_plant_seconds() -> None:
    start = _bottling().plant.start
    granulate = SegmentActual(
        "1",
        start,
        start + timedelta(minutes=30),
        process_segment="GRANULATE",
        equipment=["TAB1-GRAN"],
        materials=[
            MaterialActual("API-PCM", 5, "kg", "Consumed", lot="API-1"),
            MaterialActual("GRANULATE", 5, "kg", "Produced", lot="GR-1"),
        ],
    )
    press = SegmentActual(
        "2",
        start + timedelta(minutes=30),
        None,
        state="Running",
        process_segment="COMPRESS",
        equipment=["TAB1-PRESS"],
        materials=[
            MaterialActual("LUBRICANT", 0.1, "kg", "Consumed", lot="LUB-1"),
            MaterialActual("FG-PCM500", 4.9, "kg", "Produced", lot="TAB-1"),
        ],
    )
    order = JobOrderActual("B-1", "PCM500", start, None, "Running", [granulate, press])
    performance = parse_performance(build_performance([order], performance_id="P"))
    # The tablets come from the granulate and the lubricant, the granulate from the API.
    assert performance.genealogy() == {("API-1", "GR-1"), ("GR-1", "TAB-1"), ("LUB-1", "TAB-1")}
    # Each edge where its input went in: the granulate into the press, after the granulator.
    assert performance.genealogy_at() == {
        ("API-1", "GR-1", "TAB1-GRAN"),
        ("GR-1", "TAB-1", "TAB1-PRESS"),
        ("LUB-1", "TAB-1", "TAB1-PRESS"),
    }
    times = performance.operation_times(start)
    assert (times[("B-1", "GRANULATE")].start, times[("B-1", "GRANULATE")].end) == (0.0, 1800.0)
    assert (times[("B-1", "COMPRESS")].start, times[("B-1", "COMPRESS")].end) == (1800.0, None)


def test_performance_that_is_not_valid_b2mml_is_refused_naming_the_line() -> None:
    document = build_performance([_actual()], performance_id="PERF-9")
    broken = document.replace(
        b"<OperationsType>Production</OperationsType>", b"<Bogus>Production</Bogus>", 1
    )
    with pytest.raises(B2MMLChannelError, match=r"B2MML-OperationsPerformance.xsd \(line \d+\)"):
        parse_performance(broken)
    with pytest.raises(B2MMLChannelError, match="refused"):
        parse_performance(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    with pytest.raises(B2MMLChannelError, match="expected <ProcessOperationsPerformance>"):
        parse_performance((ERP_SAMPLES / "bottling_schedule.xml").read_bytes())


# -- against a fresh mes_core ---------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_mes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty MES: a new migrated SQLite database, its API in a thread."""
    url = f"sqlite:///{tmp_path_factory.mktemp('b2mml') / 'mes.db'}"
    upgrade(url)
    settings = Settings(database_url=url, admin_password=ADMIN_PASSWORD)
    with ServerThread(settings) as server:
        yield server.url


def _cli(*args: str) -> str:
    result = CliRunner().invoke(build_app(), list(args), env={"MESTWIN_PASSWORD": ""})
    assert result.exit_code == 0, result.output
    return result.output


def test_newcomer_loads_the_plants_and_imports_the_shipped_erp_samples(fresh_mes: str) -> None:
    login = ["--user", "admin", "--password", ADMIN_PASSWORD]
    for plant in ("bottling_line.yaml", "tablet_line.yaml"):
        out = _cli(
            "mes",
            "load-plant",
            str(ROOT / "plant_models" / plant),
            "--url",
            fresh_mes,
            "--password",
            ADMIN_PASSWORD,
        )
        assert "loaded plant" in out and " routings" in out
    bottling = _cli(
        "erp", "import", str(ERP_SAMPLES / "bottling_schedule.xml"), "--mes-url", fresh_mes, *login
    )
    assert "2 created, 1 released, 0 unchanged" in bottling
    tablet = _cli(
        "erp", "import", str(ERP_SAMPLES / "tablet_schedule.xml"), "--mes-url", fresh_mes, *login
    )
    assert "1 created" in tablet
    again = _cli(
        "erp", "import", str(ERP_SAMPLES / "bottling_schedule.xml"), "--mes-url", fresh_mes, *login
    )
    assert "0 created, 0 released, 2 unchanged" in again
    with MesClient(fresh_mes).login("admin", ADMIN_PASSWORD) as admin:
        states = {j.code: j.state for j in admin.list_job_orders()}
        # RequestState Released lands released; no RequestState, planned.
        expected = {"PO-4711": "released", "PO-4712": "planned"}
        for number in parse_schedule((ERP_SAMPLES / "tablet_schedule.xml").read_bytes()).job_orders:
            expected[number.number] = number.state
        assert states == expected
    twice = CliRunner().invoke(
        build_app(),
        [
            "mes",
            "load-plant",
            str(ROOT / "plant_models" / "bottling_line.yaml"),
            "--url",
            fresh_mes,
            "--password",
            ADMIN_PASSWORD,
        ],
    )
    assert twice.exit_code == 1
    assert "HTTP 409" in twice.output and "loaded already" in twice.output
    assert "Traceback" not in twice.output


def test_b2mml_mode_sends_orders_and_reads_actuals_through_b2mml_only(fresh_mes: str) -> None:
    """The mes_core adapter with ``orders: b2mml``: the order goes in as a schedule, its
    actuals come back from the performance, equal to what the REST API says, and no
    job-order, lot or genealogy endpoint is called for them."""
    plant = _bottling()
    plant_start = plant.plant.start
    sut = MesCoreSut(
        fresh_mes, plant_start=plant_start, admin_password=ADMIN_PASSWORD, orders="b2mml"
    )
    rest = MesCoreSut(fresh_mes, plant_start=plant_start, admin_password=ADMIN_PASSWORD)
    paths: list[str] = []
    try:
        sut.load_master_data(plant)  # loaded before: 409, kept
        sut._admin_client()._http.event_hooks["request"].append(
            lambda request: paths.append(f"{request.method} {request.url.path}")
        )
        order = OrderRequest("JO-B2MML-1", "WATER-500", 12, 0.0, 3600.0, 1)
        assert sut.send_order(order).accepted
        assert sut.send_order(order).accepted  # idempotent: the same document again
        refused = sut.send_order(OrderRequest("JO-B2MML-1", "WATER-500", 13, 0.0, 3600.0, 1))
        assert (refused.accepted, refused.status, refused.rule) == (False, 409, "CONFLICT")
        assert "quantity 12, the document says 13" in refused.message
        (view,) = [v for v in sut.orders() if v.id == order.id]
        assert (view.state, view.quantity, view.good) == ("released", 12, 0)
        assert [(o.segment, o.state) for o in view.operations] == [
            (segment, "pending") for segment in ("FILL", "CAP", "LABEL", "PACK")
        ]
        _walk(fresh_mes, order.id)
        paths_before_records = len(paths)
        records = sut.records(plant, 3600.0)
        (view,) = [v for v in sut.orders() if v.id == order.id]
        assert (view.state, view.good, view.scrap) == ("completed", 11, 1)
        assert {o.state for o in view.operations} == {"completed"}
        mes_records = rest.records(plant, 3600.0)
    finally:
        sut.close()
        rest.close()
    assert records.job_orders[order.id] == mes_records.job_orders[order.id]
    assert records.job_orders[order.id] == OrderRecord(
        good=11,
        scrap=1,
        lots_consumed={"PF-24001": 12.0, "CAP-7781": 12.0},
        lots_produced={f"{order.id}-OUT": 11.0},
    )
    assert (
        records.genealogy
        == mes_records.genealogy
        == {
            ("PF-24001", f"{order.id}-OUT"),
            ("CAP-7781", f"{order.id}-OUT"),
        }
    )
    assert records.work_units == mes_records.work_units
    assert records.operation_times == mes_records.operation_times
    assert records.operation_times is not None
    assert records.record_times is not None and mes_records.record_times is not None
    assert mes_records.record_times.pop("consumptions")  # a performance gives no such time
    assert records.record_times == mes_records.record_times
    assert len(records.record_times["job order start/end"]) == 2
    assert {segment for _, segment in records.operation_times} == {"FILL", "CAP", "LABEL", "PACK"}
    orders_and_actuals = [p for p in paths if "/erp/" in p]
    assert orders_and_actuals[:3] == ["POST /api/v1/erp/schedules"] * 3
    assert "GET /api/v1/erp/performance" in paths[paths_before_records:]
    # Labour hours come from the labour endpoints (B2MML's PersonnelActual carries no
    # hours here), as equipment records come from the REST API: not order internals.
    internals = [
        p
        for p in paths
        if any(part in p for part in ("/job-orders", "/lots", "/genealogy", "/master-data"))
        and not p.startswith("GET /api/v1/labour/")
    ]
    assert internals == []


def _walk(url: str, order: str) -> None:
    """The shop floor (REST, as operators would): all four operations of WATER-500."""
    with MesClient(url).login("admin", ADMIN_PASSWORD) as admin:
        units = {1: "BTL1-FILLER", 2: "BTL1-CAPPER", 3: "BTL1-LABELER", 4: "BTL1-CASEPACKER"}
        admin.dispatch_job_order(order, units)
        for seq in units:
            admin.start_operation(order, seq, operators=["OP-ANNA"])
            if seq == 1:
                admin.consume_lot(order, seq, "PF-24001", 12)
            if seq == 2:
                admin.consume_lot(order, seq, "CAP-7781", 12)
            admin.report_quantities(
                order, seq, good=11 if seq > 1 else 12, scrap=1 if seq == 2 else 0
            )
            lot = OutputLot(code=f"{order}-OUT", quantity=11) if seq == 4 else None
            admin.complete_operation(order, seq, output_lot=lot)


def test_mes_core_state_history_dates_a_hold_as_its_nonconformance(fresh_mes: str) -> None:
    """``state_history`` (the ``state_at`` expectation) on this fresh MES: a hold is dated
        as the nonconformance that placed it was opened and cites its audit entry; what the MES
        dated on its own clock with no plant time stated (ERP's release, this admin's dispatch and
    start) is
        not on the plant's timeline and is left out; an unknown lot has no history."""
    plant = _bottling()
    sut = MesCoreSut(fresh_mes, plant_start=plant.plant.start, admin_password=ADMIN_PASSWORD)
    try:
        sut.load_master_data(plant)  # loaded before: 409, kept
        assert sut.send_order(OrderRequest("JO-HIST-1", "WATER-500", 5, 0.0)).accepted
        with MesClient(fresh_mes).login("admin", ADMIN_PASSWORD) as admin:
            admin.dispatch_job_order("JO-HIST-1", {1: "BTL1-FILLER"})
            admin.start_operation("JO-HIST-1", 1, operators=["OP-ANNA"])
            nc = admin.open_nonconformance("dented", job_order="JO-HIST-1", lots=["PF-24002"])
        opened = (nc.opened_at - plant.plant.start).total_seconds()
        (held,) = sut.state_history("job_order", "JO-HIST-1") or []
        (lot,) = sut.state_history("lot", "PF-24002") or []
        assert (held.state, lot.state) == ("held", "on_hold")
        assert held.at == lot.at == pytest.approx(opened, abs=0.001)
        assert held.evidence.startswith("MES audit entry ") and "(job_order.hold) hash " in (
            held.evidence
        )
        assert held.evidence.endswith(f"dated as nonconformance {nc.number} was opened")
        assert sut.state_history("lot", "NO-SUCH-LOT") is None
    finally:
        sut.close()


def test_an_unreachable_mes_is_one_line_for_load_plant() -> None:
    result = CliRunner().invoke(
        build_app(),
        [
            "mes",
            "load-plant",
            str(ROOT / "plant_models" / "bottling_line.yaml"),
            "--url",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 1
    assert "cannot reach the MES" in result.output
    assert "Traceback" not in result.output


B2MML_SCENARIO = """\
name: b2mml-orders
plant: {plant}
duration: 2h
seed: 1
link: direct
system_under_test: {{adapter: mes_core, orders: b2mml}}
erp:
  plant_orders: false
  orders:
    - {{id: JO-B1, product: WATER-500, quantity: 60}}
people:
  - {{id: OP-ANNA, role: operator}}
expectations:
  - {{type: all_orders_completed}}
  - {{type: reconciliation_exact}}
"""


@pytest.mark.slow
def test_a_scenario_runs_with_orders_and_actuals_in_b2mml_only(tmp_path: Path) -> None:
    """``system_under_test: {adapter: mes_core, orders: b2mml}``: the order goes in as a
    ProcessOperationsSchedule, every order actual comes back from a
    ProcessOperationsPerformance, and the run reconciles exactly: counts, lots, genealogy
    (where consumed) and operation times. About 20 s."""
    path = tmp_path / "b2mml.yaml"
    path.write_text(B2MML_SCENARIO.format(plant=ROOT / "plant_models" / "bottling_line.yaml"))
    result = run_scenario(RunOptions(scenario=path, report_dir=tmp_path / "report", progress=False))
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed)
    assert "B2MML V0701 only" in result.report.system_under_test
    rows = result.report.reconciliation.rows
    kinds = {(r.entity, r.quantity.split(" ")[0]) for r in rows}
    assert {("job_order", "good"), ("operation", "start"), ("genealogy", "consumed")} <= kinds
    assert all(r.matches for r in rows)
