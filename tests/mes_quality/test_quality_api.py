"""Quality over HTTP (client -> API -> services) on SQLite and PostgreSQL: rule 5, signed
disposition, role checks and bad input."""

from __future__ import annotations

import json

import httpx
import pytest
from mes_quality_factories import QA_PASSWORD, build_cell, characteristic, running_job
from sqlalchemy.orm import Session

from mes_core.client import MesClient, MesRuleViolation
from mes_core.client.errors import MesClientError
from mes_core.quality.schemas import LimitsIn


def _login(url: str, person: str, password: str) -> MesClient:
    return MesClient(url).login(person, password)


def test_rule5_operator_result_out_of_spec_holds_and_blocks_the_job_order(
    session: Session, mes_url: str
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    with _login(mes_url, cell.operator, "op-secret-1") as op:
        out = op.record_measurement(job.code, 10, "fill_volume", 506.5, lot=cell.preform_lot)
        assert not out.in_spec
        assert out.nonconformance is not None
        assert out.job_order_state == "held"
        assert "above USL 505" in out.verdict
        with pytest.raises(MesRuleViolation) as refused:
            op.report_quantities(job.code, 10, good=10)
        assert refused.value.rule == "HELD"
        with pytest.raises(MesRuleViolation) as refused_lot:
            op.consume_lot(job.code, 10, cell.preform_lot, 5)
        assert refused_lot.value.rule == "HELD"


def test_disposition_over_the_api_needs_quality_role_password_and_shows_the_signature(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    with _login(mes_url, cell.operator, "op-secret-1") as op:
        number = op.record_measurement(job.code, 10, "fill_volume", 490.0).nonconformance
        assert number is not None
        with pytest.raises(MesClientError) as by_operator:
            op.dispose_nonconformance(
                number, "release", password="op-secret-1", meaning="approval", reason="fine by me"
            )
        assert by_operator.value.status == 403
    with pytest.raises(MesClientError) as by_admin:
        admin.dispose_nonconformance(
            number, "release", password="x", meaning="approval", reason="admin override"
        )
    assert by_admin.value.status == 403
    with _login(mes_url, cell.qa, QA_PASSWORD) as qa:
        with pytest.raises(MesClientError) as wrong:
            qa.dispose_nonconformance(
                number, "release", password="nope", meaning="approval", reason="retest in spec"
            )
        assert (wrong.value.status, wrong.value.rule) == (403, "SIGNATURE_REFUSED")
        nc = qa.dispose_nonconformance(
            number,
            "rework",
            password=QA_PASSWORD,
            meaning="approval",
            reason="Refill the underfilled bottles",
            quantity=40,
        )
    assert nc.state == "disposed" and nc.disposition == "rework"
    assert nc.signature is not None
    assert nc.signature.printed_name == "Maria Quality"
    assert nc.signature.meaning == "approval"
    assert nc.signature.verified
    assert "Signed by Maria Quality" in nc.signature.manifestation
    assert admin.get_job_order(job.code).state == "running"


def test_a_supervisors_hold_outlives_an_unrelated_disposition_over_the_api(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    admin.hold_job_order(job.code, "held by hand: line clearance")
    with _login(mes_url, cell.operator, "op-secret-1") as op:
        number = op.record_measurement(job.code, 10, "fill_volume", 490.0).nonconformance
    assert number is not None
    with _login(mes_url, cell.qa, QA_PASSWORD) as qa:
        qa.dispose_nonconformance(
            number, "release", password=QA_PASSWORD, meaning="approval", reason="gauge error"
        )
    assert admin.get_job_order(job.code).state == "held"
    assert admin.release_job_order_hold(job.code, "line clearance signed").state == "running"


def test_spc_limits_set_over_the_api_make_an_in_spec_trend_a_deviation(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    char_id = characteristic(job).id
    limits = admin.set_spc_limits(char_id, LimitsIn(method="baseline", centre=500.0, sigma=1.0))
    assert (limits.ucl, limits.lcl) == (503.0, 497.0)
    results = [
        admin.record_measurement(job.code, 10, "fill_volume", v)
        for v in (499.0, 499.4, 499.8, 500.2, 500.6, 501.0)
    ]
    assert [r.nonconformance is None for r in results] == [True] * 5 + [False]
    assert results[-1].spc_rules == [3]
    chart = admin.measurements(char_id)
    assert [m.value for m in chart][-6:] == [499.0, 499.4, 499.8, 500.2, 500.6, 501.0]
    listed = admin.characteristics(routing=cell.routing)
    assert [c.name for c in listed] == ["fill_volume"]
    assert listed[0].limits.centre == 500.0


def test_manual_nonconformance_holds_the_named_lot(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    nc = admin.open_nonconformance("Preforms with black specks", lots=[cell.preform_lot])
    assert nc.held_lots == [cell.preform_lot]
    assert admin.get_lot(cell.preform_lot).status == "on_hold"
    assert admin.nonconformances(state="open")[0].number >= nc.number


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/quality/measurements", {"job_order": "X", "operation": 1}, 422),
        (
            "/api/v1/quality/measurements",
            {"job_order": "NOPE", "operation": 10, "characteristic": "c", "value": 1.0},
            404,
        ),
        (
            "/api/v1/quality/measurements",
            {"job_order": "X", "operation": 10, "characteristic": "c", "value": "abc"},
            422,
        ),
        (
            "/api/v1/quality/measurements",
            '{"job_order": "X", "operation": 10, "characteristic": "c", "value": 1e400}',
            422,
        ),
        ("/api/v1/quality/nonconformances/NC-999999/disposition", {"disposition": "bless"}, 422),
        ("/api/v1/quality/nonconformances", {"description": "x"}, 422),
    ],
)
def test_bad_quality_input_gets_a_clear_4xx(
    mes_url: str, admin: MesClient, path: str, body: dict[str, object] | str, status: int
) -> None:
    assert admin.token is not None
    raw = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(
        mes_url + path,
        content=raw,
        headers={"Authorization": f"Bearer {admin.token}", "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert response.json()["message"]


def test_unknown_nonconformance_and_characteristic_are_404(admin: MesClient) -> None:
    with pytest.raises(MesClientError) as nc:
        admin.get_nonconformance("NC-424242")
    assert nc.value.status == 404
    with pytest.raises(MesClientError) as ch:
        admin.measurements(987654321)
    assert ch.value.status == 404


def test_quality_endpoints_need_authentication(mes_url: str) -> None:
    assert httpx.get(mes_url + "/api/v1/quality/nonconformances").status_code == 401


def test_out_of_range_characteristic_id_is_422_not_a_database_overflow(
    mes_url: str, admin: MesClient
) -> None:
    assert admin.token is not None
    response = httpx.get(
        mes_url + "/api/v1/quality/characteristics/99999999999999",
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert response.status_code == 422
