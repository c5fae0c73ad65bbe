"""build_dynamic_qris / build_static_qris: the documented layout, and refusal of inputs EMVCo cannot carry."""

from __future__ import annotations

import msgspec
import pytest

from qris_soundbox.core.qris import QrisError, QrisInput, build_dynamic_qris, build_static_qris, parse_qris
from tests.qris.payloads import DYNAMIC_FIELDS, assemble, replace

INPUT = QrisInput(
    merchant_name="WARUNG BU SRI",
    merchant_city="JAKARTA",
    postal_code="10110",
    mcc="5812",
    nmid="ID1020012345678",
    merchant_criteria="UMI",
    acquirer_guid="ID.CO.BANKX.WWW",
    merchant_pan="936000081234567890",
    merchant_id="BX0001",
    amount=25000,
    bill_number="INV-0001",
    reference_label="REF-77",
    terminal_label="A01",
)


def refuse(build, data: QrisInput) -> QrisError:
    with pytest.raises(QrisError) as caught:
        build(data)
    return caught.value


def test_dynamic_payload_has_the_documented_layout() -> None:
    assert build_dynamic_qris(INPUT) == assemble(DYNAMIC_FIELDS)


def test_static_payload_is_the_same_without_amount_and_with_initiation_11() -> None:
    static = msgspec.structs.replace(INPUT, amount=None)
    expected = assemble(replace(replace(DYNAMIC_FIELDS, "01", "11"), "54", None))
    assert build_static_qris(static) == expected


def test_without_an_acquirer_only_the_national_template_is_emitted() -> None:
    data = msgspec.structs.replace(INPUT, acquirer_guid=None, merchant_pan=None, merchant_id=None)
    parsed = parse_qris(build_dynamic_qris(data))
    assert list(parsed.merchant_accounts) == ["51"]


def test_optional_additional_data_is_left_out_when_empty() -> None:
    data = msgspec.structs.replace(INPUT, bill_number=None, reference_label=None, terminal_label=None)
    assert parse_qris(build_dynamic_qris(data)).additional_data is None


def test_tlv_looking_text_stays_inside_its_field() -> None:
    name = "X6304FFFF5802SG5303840"
    parsed = parse_qris(build_dynamic_qris(msgspec.structs.replace(INPUT, merchant_name=name)))
    assert (parsed.merchant_name, parsed.country, parsed.currency) == (name, "ID", "360")


@pytest.mark.parametrize("amount", [None, 0, -5, True, 1.5, 10**13])
def test_dynamic_needs_a_positive_whole_amount_of_at_most_13_digits(amount: object) -> None:
    error = refuse(build_dynamic_qris, msgspec.structs.replace(INPUT, amount=amount))
    assert error.details == {"reason": "invalid_field", "field": "amount"}


def test_static_refuses_an_amount() -> None:
    assert refuse(build_static_qris, INPUT).details["field"] == "amount"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("merchant_name", "A" * 26),
        ("merchant_name", ""),
        ("merchant_name", "   "),
        ("merchant_name", "Café Rasa"),
        ("merchant_name", "LINE\nBREAK"),
        ("merchant_city", "K" * 16),
        ("postal_code", "1" * 11),
        ("mcc", "581"),
        ("mcc", "58A2"),
        ("mcc", "５８１２"),
        ("nmid", "1020012345678"),
        ("nmid", "ID12345"),
        ("nmid", "ID10200123456789"),
        ("merchant_criteria", "XYZ"),
        ("acquirer_guid", "G" * 33),
        ("merchant_pan", "9360-0008"),
        ("merchant_pan", "9" * 20),
        ("merchant_id", "M" * 16),
        ("bill_number", "B" * 26),
        ("reference_label", "R" * 26),
        ("terminal_label", "T\x00"),
    ],
)
def test_an_input_emvco_cannot_carry_is_refused_by_field(field: str, value: str) -> None:
    error = refuse(build_dynamic_qris, msgspec.structs.replace(INPUT, **{field: value}))
    assert error.details == {"reason": "invalid_field", "field": field}
    assert error.code == "qris_invalid"


def test_merchant_pan_without_an_acquirer_is_refused() -> None:
    error = refuse(build_dynamic_qris, msgspec.structs.replace(INPUT, acquirer_guid=None))
    assert error.details["field"] == "acquirer_guid"
