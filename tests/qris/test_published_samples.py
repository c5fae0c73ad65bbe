"""The parser against QRIS strings published by others (sources in docs/qris.md), not made up here."""

from __future__ import annotations

import pytest

from qris_soundbox.core.qris import QrisError, parse_qris
from tests.qris.payloads import crc, tlv

# All from astrapay/spring-qris (AstraPay's open-source QRIS library, a licensed QRIS
# issuer), src/test/java/com/astrapay/qris/: real merchants' codes its tests parse.

# mpm/QrisParserMpmPaymentTest.java, whose own assertions give the fields checked below.
ASTRAPAY_STATIC = (
    "00020101021126640018ID.CO.ASTRAPAY.WWW011893600822321000024002092100002400303UBE"
    "51440014ID.CO.QRIS.WWW0215ID20210662463920303UBE5204581253033605802ID5915AHASS TDM Natar"
    "6007Jakarta61054433562080704AP0163042702"
)
# QrisMapperTest.java: the typical static shape, an acquirer template (BCA) and the national one.
BCA_STATIC = (
    "00020101021126650013ID.CO.BCA.WWW011893600014000128766702150008850012876670303UKE"
    "51440014ID.CO.QRIS.WWW0215ID10210818616060303UKE5204074253033605802ID5909GREEN PAW"
    "6007TANGSEL61051532362070703A0163046D3F"
)
# QrisMapperTest.java: dynamic, DOKU acquirer, amount 1000 with a fixed convenience fee of 500.
DOKU_DYNAMIC_FIXED_FEE = (
    "00020101021226530012COM.DOKU.WWW0118936008990000002475020424750303URE"
    "51440014ID.CO.QRIS.WWW0215ID10200392934820303URE5204539953033605404100055020256035005802ID"
    "5911GUREUM SHOP6013JAKARTA PUSAT61051064062070703A016304FD26"
)
# QrisMapperTest.java: dynamic, OVO acquirer, a percentage fee of 0.7 and the older GPNQR GUID in 51.
OVO_DYNAMIC_PERCENT_FEE = (
    "00020101021226580006id.ovo01189360091200006049620215yq38ZDs7MI6oaz50303UKE"
    "51450015ID.OR.GPNQR.WWW0215ID10200416988350303UKE520458125303360540650000055020357030.7"
    "5802ID5911Tims Donuts6013Jakarta Barat61051161062310507VCcCtqJ0716HgxK16eFVHfvKnGO6304265F"
)
# QrisMapperTest.java: dynamic BCA code with no tag 51 and a nested 62.99 template.
BCA_DYNAMIC_WITHOUT_51 = (
    "0002010102122654000200011893600014300061643802150008850006164380303UKE5204541153033605405495005802ID"
    "5913OMBE KOFIE-HO6013JAKARTA UTARA6105142406259010611093205121100131109320708AG20521199170002000107DINAMIS"
    "63049414"
)
# QrisMapperTest.java (commented out there as "error amount"): a real dynamic code whose amount
# is written with decimals, "39000.00".
GOJEK_DYNAMIC_DECIMAL_AMOUNT = (
    "00020101021226610014COM.GO-JEK.WWW01189360091432343267810210G2343267810303UBE"
    "51440014ID.CO.QRIS.WWW0215ID20190143816000303UBE5204581253033605802ID5910Starbucks "
    "6013JAKARTA PUSAT610510210540839000.006239502801202104130502044NMWVA6P4CID0703A0363049A04"
)
# QrisMapperTest.java: placeholder names ("NamaMerchantC1", "MIDCONTOH123456") in the style of the
# ASPI specification's illustrations; we could not check the ASPI document itself.
ILLUSTRATIVE_STATIC = (
    "00020101021126670018ID.CO.EXAMPLE2.WWW01159360001404567890215MIDCONTOH1234560303UMI"
    "51370014ID.CO.QRIS.WWW0215ID10191234567815204123453033605802ID5914NamaMerchantC16009NamaKota1"
    "6110123456789062070703K196304B22E"
)

ALL_SAMPLES = [
    ASTRAPAY_STATIC,
    BCA_STATIC,
    DOKU_DYNAMIC_FIXED_FEE,
    OVO_DYNAMIC_PERCENT_FEE,
    BCA_DYNAMIC_WITHOUT_51,
    GOJEK_DYNAMIC_DECIMAL_AMOUNT,
    ILLUSTRATIVE_STATIC,
]


def _to_dynamic(static: str, amount: int) -> str:
    """The usual static → dynamic conversion: 01 becomes 12, tag 54 goes before 58, new CRC."""
    body = static[:-8].replace("010211", "010212", 1).replace("5802ID", tlv("54", str(amount)) + "5802ID", 1)
    body += "6304"
    return body + crc(body)


@pytest.mark.parametrize("payload", ALL_SAMPLES)
def test_every_published_sample_parses(payload: str) -> None:
    parsed = parse_qris(payload)
    assert parsed.crc == payload[-4:]
    assert parsed.currency == "360" and parsed.country == "ID"


def test_astrapay_static_matches_the_publishers_own_assertions() -> None:
    parsed = parse_qris(ASTRAPAY_STATIC)
    assert parsed.point_of_initiation == "static"
    assert parsed.amount is None
    assert parsed.merchant_accounts["26"] == {
        "00": "ID.CO.ASTRAPAY.WWW",
        "01": "936008223210000240",
        "02": "210000240",
        "03": "UBE",
    }
    assert parsed.merchant_accounts["51"] == {"00": "ID.CO.QRIS.WWW", "02": "ID2021066246392", "03": "UBE"}
    assert parsed.nmid == "ID2021066246392"
    assert parsed.merchant_criteria == "UBE"
    assert (parsed.mcc, parsed.merchant_name, parsed.merchant_city, parsed.postal_code) == (
        "5812",
        "AHASS TDM Natar",
        "Jakarta",
        "44335",
    )
    assert parsed.additional_data is not None and parsed.additional_data.terminal_label == "AP01"
    assert parsed.crc == "2702"


def test_typical_static_shape_reads_acquirer_and_national_templates() -> None:
    parsed = parse_qris(BCA_STATIC)
    assert parsed.point_of_initiation == "static"
    assert parsed.merchant_accounts["26"]["00"] == "ID.CO.BCA.WWW"
    assert parsed.merchant_accounts["51"]["00"] == "ID.CO.QRIS.WWW"
    assert parsed.nmid == "ID1021081861606"
    assert parsed.amount is None


def test_dynamic_version_of_the_typical_static_carries_the_amount() -> None:
    """Derived here from BCA_STATIC by the standard conversion: not itself a published string."""
    static = parse_qris(BCA_STATIC)
    dynamic = parse_qris(_to_dynamic(BCA_STATIC, 25000))
    assert dynamic.point_of_initiation == "dynamic"
    assert dynamic.amount == 25000
    assert dynamic.merchant_accounts == static.merchant_accounts
    assert (dynamic.nmid, dynamic.merchant_name) == (static.nmid, static.merchant_name)


def test_real_dynamic_codes_carry_amount_and_fee_indicators() -> None:
    doku = parse_qris(DOKU_DYNAMIC_FIXED_FEE)
    assert (doku.point_of_initiation, doku.amount) == ("dynamic", 1000)
    assert (doku.tip_indicator, doku.tip_fixed, doku.tip_percentage) == ("02", "500", None)
    ovo = parse_qris(OVO_DYNAMIC_PERCENT_FEE)
    assert ovo.amount == 500000
    assert (ovo.tip_indicator, ovo.tip_fixed, ovo.tip_percentage) == ("03", None, "0.7")
    assert ovo.nmid == "ID1020041698835"  # tag 51 with the pre-QRIS GPNQR GUID still names the NMID
    assert ovo.additional_data is not None
    assert (ovo.additional_data.reference_label, ovo.additional_data.terminal_label) == ("VCcCtqJ", "HgxK16eFVHfvKnGO")


def test_a_code_without_tag_51_parses_with_no_nmid() -> None:
    parsed = parse_qris(BCA_DYNAMIC_WITHOUT_51)
    assert parsed.nmid is None
    assert parsed.amount == 49500
    assert parsed.additional_data is not None
    assert parsed.additional_data.bill_number == "110932"
    assert parsed.additional_data.other == {"99": "0002000107DINAMIS"}


def test_an_all_zero_decimal_amount_is_whole_rupiah() -> None:
    assert parse_qris(GOJEK_DYNAMIC_DECIMAL_AMOUNT).amount == 39000


def test_a_corrupted_published_sample_is_rejected_by_its_crc() -> None:
    corrupted = BCA_STATIC.replace("GREEN PAW", "GREEN PAX")
    with pytest.raises(QrisError) as caught:
        parse_qris(corrupted)
    assert caught.value.details["reason"] == "bad_crc"
