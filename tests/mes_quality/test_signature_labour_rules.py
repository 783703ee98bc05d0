"""Electronic signature (21 CFR Part 11), disposition effects and labour rules: pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mes_core.domain.states import LotStatus
from mes_core.labour.rules import (
    Booking,
    LabourError,
    check_clock_in,
    check_clock_out,
    check_labour_start,
    hours,
)
from mes_core.quality.disposition import (
    Disposition,
    DispositionError,
    check_can_dispose,
    lot_status_after,
)
from mes_core.quality.signature import (
    SignatureError,
    SignatureManifest,
    SignatureMeaning,
    check_request,
    record_hash,
    verify_binding,
)

NOW = datetime(2026, 3, 2, 10, 15, 30, tzinfo=UTC)
RECORD: dict[str, object] = {"nonconformance": "NC-1", "disposition": "release", "lots": ["L1"]}


def _manifest(record: dict[str, object] = RECORD) -> SignatureManifest:
    return SignatureManifest(
        signer="qa-maria",
        printed_name="Maria Quality",
        signed_at=NOW,
        meaning=SignatureMeaning.APPROVAL,
        reason="Gauge was out of calibration; retest in spec",
        record_ref="nonconformance:NC-1",
        record_hash=record_hash(record),
    )


def test_cfr11_50_signature_shows_printed_name_date_time_and_meaning() -> None:
    text = _manifest().display()
    assert "Maria Quality" in text
    assert "2026-03-02 10:15:30 UTC" in text
    assert "meaning: approval" in text
    assert "reason: Gauge was out of calibration" in text


def test_cfr11_70_signature_is_bound_to_its_record_by_hash() -> None:
    manifest = _manifest()
    stored = manifest.binding_hash()
    assert verify_binding(manifest, RECORD, stored)
    tampered = {**RECORD, "disposition": "scrap"}
    assert not verify_binding(manifest, tampered, stored)
    other_signer = SignatureManifest(**{**manifest.__dict__, "printed_name": "Mallory"})
    assert not verify_binding(other_signer, RECORD, stored)


def test_signature_request_needs_a_known_meaning_and_a_reason() -> None:
    assert check_request("approval", "Retest in spec") == SignatureMeaning.APPROVAL
    with pytest.raises(SignatureError, match="meaning 'ok' is not one of"):
        check_request("ok", "Retest in spec")
    with pytest.raises(SignatureError, match="reason of at least 5"):
        check_request("review", "  ok ")


def test_disposition_release_restores_status_before_hold() -> None:
    assert lot_status_after(Disposition.RELEASE, "released", still_held=False) == LotStatus.RELEASED
    assert lot_status_after(Disposition.REWORK, None, still_held=False) == LotStatus.AVAILABLE


def test_disposition_scrap_rejects_the_lot() -> None:
    assert lot_status_after(Disposition.SCRAP, "available", still_held=True) == LotStatus.REJECTED


def test_lot_stays_on_hold_while_another_nonconformance_holds_it() -> None:
    assert lot_status_after(Disposition.RELEASE, "available", still_held=True) == LotStatus.ON_HOLD


def test_a_disposed_nonconformance_cannot_be_disposed_again() -> None:
    check_can_dispose("open", "NC-1")
    with pytest.raises(DispositionError, match="NC-1 is already disposed"):
        check_can_dispose("disposed", "NC-1")


def test_labour_clock_in_twice_or_out_without_in_is_refused() -> None:
    check_clock_in("anna", open_attendance=False)
    with pytest.raises(LabourError, match="already clocked in"):
        check_clock_in("anna", open_attendance=True)
    with pytest.raises(LabourError, match="not clocked in"):
        check_clock_out("anna", open_attendance=False)


def test_labour_booking_needs_clock_in_first() -> None:
    with pytest.raises(LabourError, match="must clock in before booking labour on PO-1/10"):
        check_labour_start("anna", "PO-1/10", clocked_in=False, already_booked=False)
    with pytest.raises(LabourError, match="already booked"):
        check_labour_start("anna", "PO-1/10", clocked_in=True, already_booked=True)


def test_labour_hours_sum_closed_and_open_bookings() -> None:
    bookings = [
        Booking(NOW - timedelta(hours=3), NOW - timedelta(hours=1, minutes=30)),
        Booking(NOW - timedelta(minutes=30), None),
    ]
    assert hours(bookings, NOW) == pytest.approx(2.0)
