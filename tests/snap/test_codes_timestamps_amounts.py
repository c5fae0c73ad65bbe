"""SNAP response codes, X-TIMESTAMP and amounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qris_soundbox.core.snap import amounts, codes, timestamps

NOW = datetime(2026, 12, 7, 3, 55, 0, tzinfo=UTC)


def test_response_code_is_status_service_case() -> None:
    assert codes.response_code(200, codes.QR_MPM_NOTIFY, 0) == "2005200"
    assert codes.response_code(200, codes.ACCESS_TOKEN, 0) == "2007300"
    assert codes.InvalidFieldFormat("x").code(codes.QR_MPM_NOTIFY) == "4005201"
    assert codes.MissingMandatoryField().code(52) == "4005202"
    assert codes.UnauthorizedSignature().code(52) == "4015200"
    assert codes.InvalidToken().code(52) == "4015201"
    assert codes.DuplicateExternalId().code(52) == "4095200"
    assert codes.GeneralError().code(52) == "5005200"
    assert codes.InvalidToken("gone").response(73).responseMessage == "Invalid Token (B2B): gone"
    with pytest.raises(ValueError):
        codes.response_code(200, 100, 0)


@pytest.mark.parametrize(
    "text",
    ["2026-12-07T10:55:00+07:00", "2026-12-07T03:55:00.123Z", "2026-12-07T03:55:00Z", "2026-12-07T01:55:00-02:00"],
)
def test_timestamps_in_every_spelling(text: str) -> None:
    assert timestamps.check_window(text, NOW) == NOW + timedelta(milliseconds=123 if ".123" in text else 0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-12-07 10:55:00+07:00",
        "2026-12-07T10:55:00",
        "1765079700",
        "2026-13-07T10:55:00Z",
        "2026-12-07T10:55+07:00",
        "２０２６-12-07T10:55:00Z",
    ],
)
def test_malformed_timestamps_refused(text: str) -> None:
    with pytest.raises(codes.UnauthorizedSignature):
        timestamps.check_window(text, NOW)


def test_window_is_300_seconds_each_way() -> None:
    assert timestamps.check_window("2026-12-07T04:00:00Z", NOW)
    assert timestamps.check_window("2026-12-07T03:50:00Z", NOW)
    for text in ("2026-12-07T04:00:01Z", "2026-12-07T03:49:59Z"):
        with pytest.raises(codes.UnauthorizedSignature, match="300 s"):
            timestamps.check_window(text, NOW)


def test_now_timestamp_round_trips() -> None:
    text = timestamps.now_timestamp(NOW)
    assert text == "2026-12-07T10:55:00+07:00"
    assert timestamps.parse(text) == NOW


@pytest.mark.parametrize(("value", "rupiah"), [("25000.00", 25000), ("25000", 25000), ("0.00", 0), ("1.00", 1)])
def test_amounts(value: str, rupiah: int) -> None:
    assert amounts.rupiah(value) == rupiah
    assert amounts.value(rupiah) == f"{rupiah}.00"


@pytest.mark.parametrize(
    "value",
    [
        "25000.50",
        "25000.5",
        "-1.00",
        "1e4",
        " 25000.00",
        "25,000.00",
        "025000.00",
        "",
        25000,
        None,
        "9" * 16 + ".00",
        "٢٥٠٠٠.00",
    ],
)
def test_bad_amounts_are_format_errors(value: object) -> None:
    with pytest.raises(codes.InvalidFieldFormat):
        amounts.rupiah(value)


def test_other_currency_refused() -> None:
    with pytest.raises(codes.InvalidFieldFormat, match="IDR"):
        amounts.rupiah("1.00", "USD")
