"""ERP exchange over HTTP and from the command line: import a B2MML schedule, export the
performance of completed job orders; every document validated against the XSDs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from lxml import etree
from mes_quality_factories import Cell, build_cell
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from mes_core.client import MesClient
from mes_core.client.errors import MesClientError
from mes_core.erp.b2mml import PERFORMANCE_XSD, SCHEDULE_XSD, schema
from mes_core.persistence import execution, operator_transactions
from mes_core.persistence.models import AuditEntry, JobOrder
from mes_core.persistence.security import SYSTEM
from mes_core.schemas import execution as ex
from mes_core.schemas.execution import OutputLot
from mestwin.cli import build_app

SAMPLES = Path(__file__).resolve().parents[2] / "plant_models" / "erp"
NS = {"b": "http://www.mesa.org/xml/B2MML"}


def _schedule_for(cell_routing: str, cell_product: str, tag: str) -> bytes:
    """The shipped bottling sample, pointed at this test's routing and product."""
    text = (SAMPLES / "bottling_schedule.xml").read_text()
    text = text.replace("WATER-500", cell_routing).replace("JUICE-500", cell_routing)
    text = text.replace(f"FG-{cell_routing}", cell_product)
    text = text.replace("PO-4711", f"PO-{tag}-1").replace("PO-4712", f"PO-{tag}-2")
    data = text.encode()
    schema(SCHEDULE_XSD).assertValid(etree.fromstring(data))
    return data


def _integration(admin: MesClient, mes_url: str, tag: str) -> MesClient:
    return MesClient(mes_url, api_key=admin.create_api_key(f"erp-{tag}").api_key)


def test_erp_import_honours_each_requests_request_state(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    with _integration(admin, mes_url, cell.tag) as erp:
        out = erp.import_schedule(_schedule_for(cell.routing, cell.product, cell.tag))
    assert out.schedule_id == "SCHED-BTL-20260302"
    assert out.job_orders == out.created == [f"PO-{cell.tag}-1", f"PO-{cell.tag}-2"]
    assert out.released == [f"PO-{cell.tag}-1"]
    first = admin.get_job_order(f"PO-{cell.tag}-1")  # RequestState Released
    assert (first.state, first.quantity) == ("released", 12000)
    second = admin.get_job_order(f"PO-{cell.tag}-2")  # no RequestState
    assert second.state == "planned"


def test_erp_reimport_of_the_same_document_is_idempotent(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    data = _schedule_for(cell.routing, cell.product, cell.tag)
    with _integration(admin, mes_url, cell.tag) as erp:
        erp.import_schedule(data)
        again = erp.import_schedule(data)
    assert again.created == again.released == []
    assert again.unchanged == [f"PO-{cell.tag}-1", f"PO-{cell.tag}-2"]
    rows = session.execute(
        select(JobOrder.code, JobOrder.state, JobOrder.quantity)
        .where(JobOrder.code.like(f"PO-{cell.tag}-%"))
        .order_by(JobOrder.code)
    ).all()
    assert [tuple(r) for r in rows] == [
        (f"PO-{cell.tag}-1", "released", 12000),
        (f"PO-{cell.tag}-2", "planned", 8000),
    ]
    # The ERP releases the planned order by sending it again with RequestState Released.
    released = data.replace(
        b"<Priority>2</Priority>", b"<Priority>2</Priority><RequestState>Released</RequestState>"
    )
    with _integration(admin, mes_url, cell.tag) as erp:
        third = erp.import_schedule(released)
    assert (third.released, third.unchanged) == ([f"PO-{cell.tag}-2"], [f"PO-{cell.tag}-1"])
    assert admin.get_job_order(f"PO-{cell.tag}-2").state == "released"


def test_erp_import_is_all_or_nothing_and_names_the_request_it_refuses(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    data = _schedule_for(cell.routing, cell.product, cell.tag)
    with _integration(admin, mes_url, cell.tag) as erp:
        erp.import_schedule(data)
        with pytest.raises(MesClientError) as changed:
            erp.import_schedule(data.replace(b">8000<", b">9000<"))
    assert changed.value.status == 409
    assert f"OperationsRequest 'PO-{cell.tag}-2'" in changed.value.message
    assert "quantity 8000, the document says 9000" in changed.value.message
    assert admin.get_job_order(f"PO-{cell.tag}-2").quantity == 8000
    broken = data.replace(cell.product.encode(), b"NO-SUCH-PRODUCT", 1)
    broken = broken.replace(f"PO-{cell.tag}-".encode(), f"PO-{cell.tag}-X".encode())
    with _integration(admin, mes_url, cell.tag) as erp, pytest.raises(MesClientError) as bad:
        erp.import_schedule(broken)
    assert bad.value.status == 404
    assert f"OperationsRequest 'PO-{cell.tag}-X1'" in bad.value.message
    assert "NO-SUCH-PRODUCT" in bad.value.message
    with pytest.raises(MesClientError):
        admin.get_job_order(f"PO-{cell.tag}-X2")  # the valid second order was not kept


def test_erp_import_refuses_a_request_state_only_the_mes_may_report(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    data = _schedule_for(cell.routing, cell.product, cell.tag)
    running = data.replace(b"<RequestState>Released<", b"<RequestState>Running<")
    with _integration(admin, mes_url, cell.tag) as erp, pytest.raises(MesClientError) as bad:
        erp.import_schedule(running)
    assert (bad.value.status, bad.value.rule) == (422, "B2MML_BAD_VALUE")
    assert f"OperationsRequest 'PO-{cell.tag}-1': RequestState 'Running'" in bad.value.message


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("external_entity.xml", "B2MML_FORBIDDEN_XML"),
        ("entity_bomb.xml", "B2MML_FORBIDDEN_XML"),
        ("wrong_namespace.xml", "B2MML_WRONG_NAMESPACE"),
        ("schema_invalid.xml", "B2MML_SCHEMA_INVALID"),
        ("maintenance_schedule.xml", "B2MML_NOT_PRODUCTION"),
    ],
)
def test_hostile_or_invalid_b2mml_is_refused_with_a_4xx_and_recorded(
    mes_url: str, admin: MesClient, session: Session, name: str, rule: str
) -> None:
    assert admin.token is not None
    response = httpx.post(
        mes_url + "/api/v1/erp/schedules",
        content=(SAMPLES / "hostile" / name).read_bytes(),
        headers={"Authorization": f"Bearer {admin.token}", "Content-Type": "application/xml"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["rule"] == rule
    last = session.execute(
        select(AuditEntry)
        .where(AuditEntry.object_ref == "erp:schedule")
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).scalar_one()
    assert json.loads(last.detail)["rule"] == rule


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"orders": []}', "application/json", "not well-formed XML"),
        (b"", "application/xml", "document is empty"),
        (b"<a>", "text/plain", "not well-formed XML"),
    ],
)
def test_a_schedule_that_is_no_xml_is_refused_by_the_b2mml_reader_whatever_its_content_type(
    mes_url: str, admin: MesClient, body: bytes, content_type: str, message: str
) -> None:
    assert admin.token is not None
    response = httpx.post(
        mes_url + "/api/v1/erp/schedules",
        content=body,
        headers={"Authorization": f"Bearer {admin.token}", "Content-Type": content_type},
    )
    assert response.status_code == 422, response.text
    assert response.json()["rule"] == "B2MML_MALFORMED"
    assert message in response.json()["message"]


def test_erp_import_needs_the_integration_or_supervisor_role(
    session: Session, mes_url: str
) -> None:
    cell = build_cell(session)
    data = _schedule_for(cell.routing, cell.product, cell.tag)
    with (
        MesClient(mes_url).login(cell.operator, "op-secret-1") as op,
        pytest.raises(MesClientError) as refused,
    ):
        op.import_schedule(data)
    assert refused.value.status == 403


def test_erp_export_of_a_completed_job_order_is_valid_b2mml_with_lots(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    with _integration(admin, mes_url, cell.tag) as erp:
        erp.import_schedule(_schedule_for(cell.routing, cell.product, cell.tag))
    job = f"PO-{cell.tag}-1"  # released by the import (RequestState Released)
    admin.dispatch_job_order(job, {10: cell.filler, 20: cell.capper})
    admin.start_operation(job, 10, operators=[cell.operator])
    admin.consume_lot(job, 10, cell.preform_lot, 120)
    admin.report_quantities(job, 10, good=118, scrap=2)
    admin.complete_operation(job, 10)
    admin.start_operation(job, 20, operators=[])
    admin.report_quantities(job, 20, good=118)
    admin.complete_operation(job, 20, output_lot=OutputLot(code=f"FG-{cell.tag}", quantity=118))
    with pytest.raises(MesClientError) as not_done:
        admin.export_performance([f"PO-{cell.tag}-2"])
    assert not_done.value.status == 422
    document = admin.export_performance([job])
    root = etree.fromstring(document)
    schema(PERFORMANCE_XSD).assertValid(root)
    assert root.xpath("//b:OperationsResponse/b:OperationsRequestID/text()", namespaces=NS) == [job]
    actuals = root.xpath("//b:MaterialActual", namespaces=NS)
    found = {
        (
            a.findtext("b:MaterialUse", namespaces=NS),
            a.findtext("b:MaterialLotID", namespaces=NS),
            a.findtext("b:Quantity/b:QuantityString", namespaces=NS),
        )
        for a in actuals
    }
    assert found == {("Consumed", cell.preform_lot, "120"), ("Produced", f"FG-{cell.tag}", "118")}
    assert root.xpath("//b:PersonnelActual/b:PersonID/text()", namespaces=NS) == [cell.operator]
    data = {
        (d.findtext("b:ID", namespaces=NS), d.findtext("b:Value/b:ValueString", namespaces=NS))
        for d in root.xpath(
            "//b:SegmentResponse[b:OperationsSegmentID='10']/b:SegmentData", namespaces=NS
        )
    }
    assert data == {("GoodQuantity", "118"), ("ScrapQuantity", "2")}
    # Open job orders as they stand, on request: the planned one is Waiting.
    both = etree.fromstring(admin.export_performance([job, f"PO-{cell.tag}-2"], include_open=True))
    schema(PERFORMANCE_XSD).assertValid(both)
    states = both.xpath("//b:OperationsResponse/b:ResponseState/text()", namespaces=NS)
    assert states == ["Completed", "Waiting"]
    assert both.findtext(".//b:PerformanceState", namespaces=NS) == "Running"


def test_cli_erp_import_against_a_running_mes(
    session: Session, mes_url: str, admin: MesClient, tmp_path: Path
) -> None:
    cell = build_cell(session)
    good = tmp_path / "schedule.xml"
    good.write_bytes(_schedule_for(cell.routing, cell.product, cell.tag))
    key = admin.create_api_key(f"cli-{cell.tag}").api_key
    runner = CliRunner()
    app = build_app()
    ok = runner.invoke(app, ["erp", "import", str(good), "--mes-url", mes_url, "--api-key", key])
    assert ok.exit_code == 0, ok.output
    assert f"PO-{cell.tag}-1" in ok.output
    bomb = runner.invoke(
        app,
        ["erp", "import", str(SAMPLES / "hostile" / "entity_bomb.xml"), "--mes-url", mes_url],
        env={"MESTWIN_API_KEY": key},
    )
    assert bomb.exit_code == 1
    assert "B2MML_FORBIDDEN_XML" in bomb.output
    assert "Traceback" not in bomb.output
    assert len(bomb.output.strip().splitlines()) == 1


def test_cli_erp_import_refuses_without_credentials_or_file(tmp_path: Path) -> None:
    runner = CliRunner()
    app = build_app()
    missing = runner.invoke(app, ["erp", "import", str(tmp_path / "nope.xml")])
    assert missing.exit_code == 1
    assert "No such file" in missing.output
    no_key = runner.invoke(
        app,
        ["erp", "import", str(SAMPLES / "bottling_schedule.xml"), "--mes-url", "http://x"],
        env={"MESTWIN_API_KEY": ""},
    )
    assert no_key.exit_code == 1
    assert "--api-key" in no_key.output


def test_cli_erp_import_and_export_on_the_database_directly(
    session: Session, database_url: str, tmp_path: Path
) -> None:
    cell = build_cell(session)
    schedule = tmp_path / "schedule.xml"
    schedule.write_bytes(_schedule_for(cell.routing, cell.product, cell.tag))
    runner = CliRunner()
    app = build_app()
    env = {"MESTWIN_DATABASE_URL": database_url}
    ok = runner.invoke(app, ["erp", "import", str(schedule)], env=env)
    assert ok.exit_code == 0, ok.output
    assert "2 job orders" in ok.output
    job = f"PO-{cell.tag}-1"
    planned = runner.invoke(app, ["erp", "export", "--job-order", job], env=env)
    assert planned.exit_code == 1
    assert "only completed or closed" in planned.output
    assert "Traceback" not in planned.output
    _complete(session, job, cell)
    out = tmp_path / "performance.xml"
    done = runner.invoke(app, ["erp", "export", "--job-order", job, "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    root = etree.parse(str(out)).getroot()
    schema(PERFORMANCE_XSD).assertValid(root)
    assert root.xpath("//b:OperationsRequestID/text()", namespaces=NS)[0] == job


def _complete(session: Session, job: str, cell: Cell) -> None:
    """Walk ``job`` (released by its import) through both operations with the execution
    services."""
    execution.dispatch_job_order(
        session,
        job,
        ex.DispatchRequest(work_units={10: cell.filler, 20: cell.capper}),
        actor=SYSTEM,
    )
    for seq, operators in ((10, [cell.operator]), (20, [])):
        execution.start_operation(
            session, job, seq, ex.StartRequest(operators=operators), actor=SYSTEM
        )
        operator_transactions.report_quantities(
            session, job, seq, ex.ReportRequest(good=5), actor=SYSTEM
        )
        execution.complete_operation(session, job, seq, ex.CompleteRequest(), actor=SYSTEM)
    session.commit()
