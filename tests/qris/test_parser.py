"""parse_qris: what it reads from a well-formed payload and the precise reason it gives for each rejection."""

from __future__ import annotations

import pytest

from qris_soundbox.core.errors import ValidationFailed
from qris_soundbox.core.qris import MAX_PAYLOAD_LENGTH, QrisError, crc16_ccitt_false, parse_qris
from tests.qris.payloads import DYNAMIC_FIELDS, NATIONAL_TEMPLATE, assemble, crc, replace, tlv


def reject(payload: str) -> QrisError:
    with pytest.raises(QrisError) as caught:
        parse_qris(payload)
    return caught.value


def test_crc_known_vector() -> None:
    assert crc16_ccitt_false("123456789") == "29B1"


def test_crc_agrees_with_the_standard_library() -> None:
    body = assemble(DYNAMIC_FIELDS)[:-4]
    assert crc16_ccitt_false(body) == crc(body)


def test_reads_every_field_of_a_dynamic_payload() -> None:
    parsed = parse_qris(assemble(DYNAMIC_FIELDS))
    assert parsed.payload_format == "01"
    assert parsed.point_of_initiation == "dynamic"
    assert parsed.merchant_accounts == {
        "26": {"00": "ID.CO.BANKX.WWW", "01": "936000081234567890", "02": "BX0001", "03": "UMI"},
        "51": {"00": "ID.CO.QRIS.WWW", "02": "ID1020012345678", "03": "UMI"},
    }
    assert (parsed.nmid, parsed.merchant_criteria) == ("ID1020012345678", "UMI")
    assert (parsed.mcc, parsed.currency, parsed.amount, parsed.country) == ("5812", "360", 25000, "ID")
    assert (parsed.merchant_name, parsed.merchant_city, parsed.postal_code) == ("WARUNG BU SRI", "JAKARTA", "10110")
    assert parsed.additional_data is not None
    assert parsed.additional_data.bill_number == "INV-0001"
    assert parsed.additional_data.reference_label == "REF-77"
    assert parsed.additional_data.terminal_label == "A01"
    assert parsed.other_fields == {}


def test_error_is_a_validation_failure_with_a_stable_code() -> None:
    error = reject("hello")
    assert isinstance(error, ValidationFailed)
    assert (error.code, error.status) == ("qris_invalid", 422)
    assert error.details["reason"] == error.reason


def test_longer_than_512_is_too_long() -> None:
    assert reject("0" * (MAX_PAYLOAD_LENGTH + 1)).reason == "too_long"


def test_a_length_past_the_end_is_bad_length() -> None:
    error = reject("000201010212" + "5999WARUNG")
    assert (error.reason, error.details["tag"], error.details["position"]) == ("bad_length", "59", 12)


def test_a_truncated_header_is_bad_length() -> None:
    assert reject("00020101021259").reason == "bad_length"


def test_a_sub_field_length_past_its_template_is_bad_length() -> None:
    broken = tlv("00", "ID.CO.QRIS.WWW") + "0299ID1020012345678"
    error = reject(assemble(replace(DYNAMIC_FIELDS, "51", broken)))
    assert (error.reason, error.details["tag"]) == ("bad_length", "51.02")


def test_a_wrong_crc_is_bad_crc() -> None:
    payload = assemble(DYNAMIC_FIELDS)
    wrong = "0000" if payload[-4:] != "0000" else "FFFF"
    assert reject(payload[:-4] + wrong).reason == "bad_crc"


def test_a_lowercase_crc_is_bad_format() -> None:
    candidates = (assemble(replace(DYNAMIC_FIELDS, "61", str(10110 + i))) for i in range(50))
    payload = next(p for p in candidates if not p[-4:].isdigit())  # a CRC with a hex letter in it
    assert reject(payload[:-4] + payload[-4:].lower()).reason == "bad_format"


@pytest.mark.parametrize("tag", ["00", "01", "52", "53", "58", "59", "60"])
def test_a_missing_mandatory_tag_is_named(tag: str) -> None:
    error = reject(assemble(replace(DYNAMIC_FIELDS, tag, None)))
    assert (error.reason, error.details["tag"]) == ("missing_tag", tag)


def test_a_missing_crc_is_missing_tag() -> None:
    body = "".join(tlv(tag, value) for tag, value in DYNAMIC_FIELDS)
    error = reject(body)
    assert (error.reason, error.details["tag"]) == ("missing_tag", "63")


def test_no_merchant_account_is_missing_tag() -> None:
    fields = replace(replace(DYNAMIC_FIELDS, "26", None), "51", None)
    error = reject(assemble(fields))
    assert (error.reason, error.details["tag"]) == ("missing_tag", "26-51")


def test_empty_payload_is_missing_tag() -> None:
    assert reject("").reason == "missing_tag"


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        ("00", "02"),
        ("01", "13"),
        ("52", "58A2"),
        ("52", "581"),
        ("53", "840"),
        ("58", "SG"),
        ("54", "25000.50"),
        ("54", "0"),
        ("54", "-1"),
        ("54", "1,000"),
        ("54", "12345678901234"),
        ("59", "   "),
    ],
)
def test_a_wrong_fixed_or_formatted_value_is_bad_format(tag: str, value: str) -> None:
    error = reject(assemble(replace(DYNAMIC_FIELDS, tag, value)))
    assert (error.reason, error.details["tag"]) == ("bad_format", tag)


def test_a_bad_tip_indicator_is_bad_format() -> None:
    fields = [*DYNAMIC_FIELDS[:7], ("55", "04"), *DYNAMIC_FIELDS[7:]]
    assert reject(assemble(fields)).details == {"reason": "bad_format", "tag": "55"}


def test_payload_format_indicator_must_come_first() -> None:
    fields = [DYNAMIC_FIELDS[1], DYNAMIC_FIELDS[0], *DYNAMIC_FIELDS[2:]]
    error = reject(assemble(fields))
    assert (error.reason, error.details["tag"]) == ("bad_format", "00")


def test_crc_must_be_last() -> None:
    payload = assemble(DYNAMIC_FIELDS) + tlv("64", "X")
    error = reject(payload)
    assert (error.reason, error.details["tag"]) == ("bad_format", "63")


def test_a_duplicated_tag_is_bad_format() -> None:
    fields = [*DYNAMIC_FIELDS[:8], ("58", "ID"), *DYNAMIC_FIELDS[8:]]
    error = reject(assemble(fields))
    assert (error.reason, error.details["tag"]) == ("bad_format", "58")


def test_a_duplicated_sub_tag_is_bad_format() -> None:
    error = reject(assemble(replace(DYNAMIC_FIELDS, "51", NATIONAL_TEMPLATE + tlv("02", "ID1020099999999"))))
    assert (error.reason, error.details["tag"]) == ("bad_format", "51.02")


def test_a_zero_length_field_is_bad_format() -> None:
    payload = assemble(DYNAMIC_FIELDS)
    body = payload[:-8] + "6400" + "6304"
    assert reject(body + crc(body)).reason == "bad_format"


def test_a_non_digit_tag_is_bad_format() -> None:
    error = reject("000201A10212")
    assert (error.reason, error.details["position"]) == ("bad_format", 6)


def test_non_ascii_is_bad_format_at_its_position() -> None:
    payload = assemble(replace(DYNAMIC_FIELDS, "59", "WARUNG BU SRÍ"))
    error = reject(payload)
    assert error.reason == "bad_format"
    assert error.details["position"] == payload.index("Í")


def test_a_whole_amount_with_a_zero_fraction_is_accepted() -> None:
    assert parse_qris(assemble(replace(DYNAMIC_FIELDS, "54", "25000.00"))).amount == 25000


def test_a_static_payload_may_carry_no_amount_and_no_additional_data() -> None:
    fields = replace(replace(replace(DYNAMIC_FIELDS, "01", "11"), "54", None), "62", None)
    parsed = parse_qris(assemble(fields))
    assert (parsed.point_of_initiation, parsed.amount, parsed.additional_data) == ("static", None, None)


def test_a_merchant_name_longer_than_emvco_allows_is_still_read() -> None:
    """Real stickers exceed EMVCo's 25 characters and every wallet reads them: the parser does too."""
    name = "TOKO SERBA ADA SUMBER REJEKI"  # 28 characters
    assert parse_qris(assemble(replace(DYNAMIC_FIELDS, "59", name))).merchant_name == name


def test_unknown_and_card_scheme_tags_are_kept_raw() -> None:
    fields = [*DYNAMIC_FIELDS[:2], ("04", "5413330000000000"), *DYNAMIC_FIELDS[2:], ("64", tlv("00", "ID"))]
    parsed = parse_qris(assemble(fields))
    assert parsed.other_fields == {"04": "5413330000000000", "64": "0002ID"}


def test_the_nmid_falls_back_to_a_qris_template_outside_51() -> None:
    fields = replace(replace(DYNAMIC_FIELDS, "51", None), "26", NATIONAL_TEMPLATE)
    assert parse_qris(assemble(fields)).nmid == "ID1020012345678"
