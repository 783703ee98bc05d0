"""B2MML V0701: safe parsing of ProcessOperationsSchedule, ProcessOperationsPerformance."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from mes_core.erp.b2mml import (
    PERFORMANCE_XSD,
    SCHEDULE_XSD,
    B2MMLError,
    parse_untrusted,
    schema,
)
from mes_core.erp.performance import (
    JobOrderActual,
    MaterialActual,
    SegmentActual,
    build_performance,
)
from mes_core.erp.schedule import parse_schedule

SAMPLES = Path(__file__).resolve().parents[2] / "plant_models" / "erp"
HOSTILE = SAMPLES / "hostile"


@pytest.mark.parametrize("name", ["bottling_schedule.xml", "tablet_schedule.xml"])
def test_sample_schedules_are_valid_against_the_b2mml_xsd(name: str) -> None:
    doc = etree.parse(str(SAMPLES / name))
    schema(SCHEDULE_XSD).assertValid(doc)


def test_schedule_import_maps_operations_requests_to_job_orders() -> None:
    schedule = parse_schedule((SAMPLES / "bottling_schedule.xml").read_bytes())
    assert schedule.schedule_id == "SCHED-BTL-20260302"
    first, second = schedule.job_orders
    assert first.number == "PO-4711"
    assert first.product == "FG-WATER-500"
    assert first.quantity == 12000
    assert first.unit == "ea"
    assert first.operations_definition == "WATER-500"
    assert first.planned_start == datetime(2026, 3, 2, 6, tzinfo=UTC)
    assert first.due == datetime(2026, 3, 2, 14, tzinfo=UTC)
    assert first.priority == 1
    assert second.product == "FG-JUICE-500"


def test_schedule_import_finds_the_produced_material_in_a_later_segment() -> None:
    (order,) = parse_schedule((SAMPLES / "tablet_schedule.xml").read_bytes()).job_orders
    assert (order.number, order.product, order.quantity) == (
        "B-26-0142",
        "FG-PCM500",
        8,
    )
    assert order.due == datetime(2026, 3, 3, 18, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        ("external_entity.xml", "forbidden-xml", "DTDs, entity declarations"),
        ("entity_bomb.xml", "forbidden-xml", "document type declaration"),
        ("wrong_namespace.xml", "wrong-namespace", "http://www.wbf.org/xml/B2MML-V0401"),
        ("schema_invalid.xml", "schema-invalid", "Colour"),
        ("maintenance_schedule.xml", "not-production", "OperationsType is 'Maintenance'"),
    ],
)
def test_hostile_or_invalid_schedule_is_refused_with_a_clear_reason(
    name: str, code: str, words: str
) -> None:
    with pytest.raises(B2MMLError) as caught:
        parse_schedule((HOSTILE / name).read_bytes())
    assert caught.value.code == code
    assert words in caught.value.message
    assert "\n" not in caught.value.message


def test_schedule_refuses_malformed_empty_and_oversized_documents() -> None:
    with pytest.raises(B2MMLError, match="not well-formed"):
        parse_schedule(b"<ProcessOperationsSchedule")
    with pytest.raises(B2MMLError, match="empty"):
        parse_schedule(b"  ")
    with pytest.raises(B2MMLError) as caught:
        parse_schedule(b" " * 5_000_001)
    assert caught.value.code == "too-large"


def test_schedule_refuses_a_different_b2mml_document() -> None:
    data = (
        b'<ProcessOperationsPerformance xmlns="http://www.mesa.org/xml/B2MML" releaseID="V0701"/>'
    )
    with pytest.raises(B2MMLError) as caught:
        parse_untrusted(data, expected_root="ProcessOperationsSchedule", xsd=SCHEDULE_XSD)
    assert caught.value.code == "wrong-document"


def test_schedule_refuses_duplicate_orders_and_non_positive_quantities() -> None:
    text = (SAMPLES / "bottling_schedule.xml").read_text()
    with pytest.raises(B2MMLError, match="repeated"):
        parse_schedule(text.replace("PO-4712</ID>", "PO-4711</ID>").encode())
    with pytest.raises(
        B2MMLError, match="quantity '-5' of 'FG-JUICE-500' is not a positive number"
    ):
        parse_schedule(text.replace(">8000<", ">-5<").encode())


def _order() -> JobOrderActual:
    t0 = datetime(2026, 3, 2, 6, tzinfo=UTC)
    t1 = datetime(2026, 3, 2, 13, 40, tzinfo=UTC)
    return JobOrderActual(
        number="PO-4711",
        operations_definition="WATER-500",
        start=t0,
        end=t1,
        segments=[
            SegmentActual(
                segment_id="1",
                process_segment="FILL",
                start=t0,
                end=t1,
                equipment=["BTL1-FILLER"],
                personnel=["op-anna"],
                materials=[
                    MaterialActual("PREFORM-500", 12100, "ea", "Consumed", lot="PF-2026-001"),
                    MaterialActual("WATER-500", 11950, "ea", "Produced", lot="W500-0302-A"),
                    MaterialActual("WATER-500", 150.5, "ea", "Produced"),
                ],
            )
        ],
    )


def test_performance_export_is_valid_against_the_b2mml_xsd() -> None:
    data = build_performance([_order()], performance_id="PERF-1")
    doc = etree.fromstring(data)
    schema(PERFORMANCE_XSD).assertValid(doc)
    ns = {"b": "http://www.mesa.org/xml/B2MML"}
    lots = doc.xpath("//b:MaterialActual/b:MaterialLotID/text()", namespaces=ns)
    assert lots == ["PF-2026-001", "W500-0302-A"]
    uses = doc.xpath("//b:MaterialActual/b:MaterialUse/text()", namespaces=ns)
    assert uses == ["Consumed", "Produced", "Produced"]
    quantities = doc.xpath("//b:QuantityString/text()", namespaces=ns)
    assert quantities == ["12100", "11950", "150.5"]
    assert doc.xpath("//b:OperationsRequestID/text()", namespaces=ns)[0] == "PO-4711"
    assert doc.xpath("//b:ActualStartTime/text()", namespaces=ns) == ["2026-03-02T06:00:00+00:00"]


def test_performance_export_of_an_order_without_operations_is_still_valid() -> None:
    order = JobOrderActual("PO-1", "RT-1", start=None, end=None, segments=())
    data = build_performance([order], performance_id="PERF-2")
    schema(PERFORMANCE_XSD).assertValid(etree.fromstring(data))


def test_performance_export_needs_at_least_one_order() -> None:
    with pytest.raises(ValueError, match="no completed job orders"):
        build_performance([], performance_id="PERF-3")


def test_schedule_request_state_says_which_orders_land_released() -> None:
    first, second = parse_schedule((SAMPLES / "bottling_schedule.xml").read_bytes()).job_orders
    assert (first.request_state, first.state) == ("Released", "released")
    assert (second.request_state, second.state) == (None, "planned")


def test_schedule_refuses_a_request_state_only_the_mes_reports() -> None:
    text = (SAMPLES / "bottling_schedule.xml").read_text()
    with pytest.raises(B2MMLError, match="OperationsRequest 'PO-4711': RequestState 'Completed'"):
        parse_schedule(
            text.replace(">Released</RequestState>", ">Completed</RequestState>").encode()
        )


def test_performance_export_carries_good_and_scrap_as_segment_data() -> None:
    order = _order()
    segment = SegmentActual("1", order.start, order.end, good=11950, scrap=150.5, unit="ea")
    data = build_performance(
        [JobOrderActual("PO-4711", "WATER-500", order.start, order.end, segments=[segment])],
        performance_id="PERF-4",
        performance_state="Running",
    )
    doc = etree.fromstring(data)
    schema(PERFORMANCE_XSD).assertValid(doc)
    ns = {"b": "http://www.mesa.org/xml/B2MML"}
    found = [
        (d.findtext("b:ID", namespaces=ns), d.findtext("b:Value/b:ValueString", namespaces=ns))
        for d in doc.xpath("//b:SegmentData", namespaces=ns)
    ]
    assert found == [("GoodQuantity", "11950"), ("ScrapQuantity", "150.5")]
    assert doc.findtext(".//b:PerformanceState", namespaces=ns) == "Running"
