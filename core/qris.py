"""EMVCo Merchant-Presented Mode / QRIS payloads: build the platform's QRs and parse any QRIS string."""

from __future__ import annotations

import binascii
import re
from typing import Literal

import msgspec

from qris_soundbox.core.errors import ValidationFailed

MAX_PAYLOAD_LENGTH = 512  # EMVCo MPM: a payload never exceeds 512 characters
QRIS_GUID = "ID.CO.QRIS.WWW"  # the national merchant repository's template (tag 51)
MERCHANT_CRITERIA = ("UMI", "UKE", "UME", "UBE", "URE")  # micro, small, medium, large, regular
CRC_TAG_AND_LENGTH = "6304"

QrisReason = Literal["bad_length", "bad_crc", "missing_tag", "bad_format", "too_long", "invalid_field"]

_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_DIGITS = re.compile(r"[0-9]+")
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
_CRC_VALUE = re.compile(r"[0-9A-F]{4}")
_NMID = re.compile(r"ID[0-9]{10,13}")
# Tags 02-25 are primitive card-scheme accounts; 26-51 are templates (sub-TLVs).
_ACCOUNT_PRIMITIVES = range(2, 26)
_ACCOUNT_TEMPLATES = range(26, 52)
_MANDATORY = ("00", "01", "52", "53", "58", "59", "60", "63")


class QrisError(ValidationFailed):
    """A QRIS payload (or builder input) that cannot be accepted; ``details.reason`` says why."""

    code = "qris_invalid"
    status = 422  # well-formed request, unacceptable payload

    def __init__(
        self,
        reason: QrisReason,
        message: str,
        *,
        tag: str | None = None,
        position: int | None = None,
        field: str | None = None,
    ) -> None:
        details: dict[str, object] = {"reason": reason}
        if tag is not None:
            details["tag"] = tag
        if position is not None:
            details["position"] = position
        if field is not None:
            details["field"] = field
        super().__init__(message, details=details)
        self.reason = reason


class QrisInput(msgspec.Struct, kw_only=True, frozen=True):
    """What the platform knows about a terminal's merchant, plus the per-QR data."""

    merchant_name: str  # tag 59, ≤ 25
    merchant_city: str  # tag 60, ≤ 15
    postal_code: str  # tag 61, ≤ 10
    mcc: str  # tag 52, 4 digits
    nmid: str  # tag 51.02, the national merchant id: "ID" + 10-13 digits
    merchant_criteria: Literal["UMI", "UKE", "UME", "UBE", "URE"] = "UMI"
    # Tag 26, the acquirer's own account template; emitted only when acquirer_guid is given.
    acquirer_guid: str | None = None  # reverse domain, e.g. "ID.CO.BANKX.WWW"
    merchant_pan: str | None = None  # 26.01, digits, ≤ 19
    merchant_id: str | None = None  # 26.02, ≤ 15
    amount: int | None = None  # tag 54, whole rupiah; dynamic QRs only
    bill_number: str | None = None  # 62.01
    reference_label: str | None = None  # 62.05
    terminal_label: str | None = None  # 62.07


class AdditionalData(msgspec.Struct, kw_only=True, frozen=True):
    bill_number: str | None = None
    reference_label: str | None = None
    terminal_label: str | None = None
    other: dict[str, str] = {}  # every other sub-tag of 62, raw


class ParsedQris(msgspec.Struct, kw_only=True, frozen=True):
    payload_format: str
    point_of_initiation: Literal["static", "dynamic"]
    merchant_accounts: dict[str, dict[str, str]]  # template tag (26-51) → sub-tag → value
    nmid: str | None
    merchant_criteria: str | None
    mcc: str
    currency: str
    amount: int | None
    tip_indicator: str | None  # 55: "01" payer enters a tip, "02" fixed fee, "03" percentage fee
    tip_fixed: str | None  # 56
    tip_percentage: str | None  # 57
    country: str
    merchant_name: str
    merchant_city: str
    postal_code: str | None
    additional_data: AdditionalData | None
    other_fields: dict[str, str]  # tags not interpreted above (02-25, 64-99), raw
    crc: str


def crc16_ccitt_false(data: str) -> str:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout) as 4 uppercase hex.

    ``crc_hqx`` is that CRC in C; started from 0xFFFF it is CCITT-FALSE. A pure
    Python loop was about 6% of a dynamic QR request's CPU."""
    return f"{binascii.crc_hqx(data.encode('utf-8'), 0xFFFF):04X}"


# --------------------------------------------------------------------------- building


def build_dynamic_qris(data: QrisInput) -> str:
    """A one-time QR (tag 01 = 12) carrying the amount in tag 54."""
    if type(data.amount) is not int or data.amount <= 0:
        raise QrisError("invalid_field", "a dynamic QRIS needs an amount greater than zero", field="amount")
    return _build(data, "12")


def build_static_qris(data: QrisInput) -> str:
    """A reusable QR (tag 01 = 11): the payer types the amount, so none is encoded."""
    if data.amount is not None:
        raise QrisError("invalid_field", "a static QRIS carries no amount; build a dynamic one", field="amount")
    return _build(data, "11")


def _build(data: QrisInput, initiation: str) -> str:
    _check_nmid(data.nmid)
    if data.merchant_criteria not in MERCHANT_CRITERIA:
        message = f"merchant_criteria must be one of {MERCHANT_CRITERIA}"
        raise QrisError("invalid_field", message, field="merchant_criteria")
    fields = [_tlv("00", "01"), _tlv("01", initiation)]
    if data.acquirer_guid is not None:
        fields.append(_tlv("26", _acquirer_template(data)))
    elif data.merchant_pan is not None or data.merchant_id is not None:
        raise QrisError("invalid_field", "merchant_pan and merchant_id need acquirer_guid", field="acquirer_guid")
    fields.append(_tlv("51", _tlv("00", QRIS_GUID) + _tlv("02", data.nmid) + _tlv("03", data.merchant_criteria)))
    fields.append(_tlv("52", _digits("mcc", data.mcc, exact=4)))
    fields.append(_tlv("53", "360"))
    if data.amount is not None:
        amount = str(data.amount)
        if len(amount) > 13:
            raise QrisError("invalid_field", "amount has more than 13 digits", field="amount")
        fields.append(_tlv("54", amount))
    fields.append(_tlv("58", "ID"))
    fields.append(_tlv("59", _text("merchant_name", data.merchant_name, 25)))
    fields.append(_tlv("60", _text("merchant_city", data.merchant_city, 15)))
    fields.append(_tlv("61", _text("postal_code", data.postal_code, 10)))
    additional = "".join(
        _tlv(sub, _text(name, value, 25))
        for sub, name, value in (
            ("01", "bill_number", data.bill_number),
            ("05", "reference_label", data.reference_label),
            ("07", "terminal_label", data.terminal_label),
        )
        if value is not None
    )
    if additional:
        fields.append(_tlv("62", additional))
    body = "".join(fields) + CRC_TAG_AND_LENGTH
    payload = body + crc16_ccitt_false(body)
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise QrisError("too_long", f"the payload would be {len(payload)} characters, over {MAX_PAYLOAD_LENGTH}")
    return payload


def _acquirer_template(data: QrisInput) -> str:
    assert data.acquirer_guid is not None
    template = _tlv("00", _text("acquirer_guid", data.acquirer_guid, 32))
    if data.merchant_pan is not None:
        template += _tlv("01", _digits("merchant_pan", data.merchant_pan, max_length=19))
    if data.merchant_id is not None:
        template += _tlv("02", _text("merchant_id", data.merchant_id, 15))
    return template + _tlv("03", data.merchant_criteria)


def _tlv(tag: str, value: str) -> str:
    assert 0 < len(value) <= 99, "field limits above keep every value within a two-digit length"
    return f"{tag}{len(value):02d}{value}"


def _text(field: str, value: str, max_length: int) -> str:
    # Length-prefixed TLV cannot be injected into, but a value outside printable ASCII would
    # change the CRC's byte stream and break EMVCo's "ans" character set.
    if not isinstance(value, str) or not value.strip():
        raise QrisError("invalid_field", f"{field} must be a non-empty string", field=field)
    if len(value) > max_length:
        raise QrisError("invalid_field", f"{field} is longer than {max_length} characters", field=field)
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise QrisError("invalid_field", f"{field} must be printable ASCII", field=field)
    return value


def _digits(field: str, value: str, *, exact: int | None = None, max_length: int | None = None) -> str:
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise QrisError("invalid_field", f"{field} must be ASCII digits", field=field)
    if (exact is not None and len(value) != exact) or (max_length is not None and len(value) > max_length):
        expected = f"exactly {exact}" if exact is not None else f"at most {max_length}"
        raise QrisError("invalid_field", f"{field} must have {expected} digits", field=field)
    return value


def _check_nmid(nmid: str) -> None:
    if not isinstance(nmid, str) or not _NMID.fullmatch(nmid):
        raise QrisError("invalid_field", "nmid must be 'ID' followed by 10 to 13 digits", field="nmid")


# --------------------------------------------------------------------------- parsing


def parse_qris(payload: str) -> ParsedQris:
    """Validate a QRIS string (static or dynamic) and return its fields; raises ``QrisError``."""
    if not isinstance(payload, str):
        raise QrisError("bad_format", "a QRIS payload is a string")
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise QrisError("too_long", f"a QRIS payload has at most {MAX_PAYLOAD_LENGTH} characters, got {len(payload)}")
    if not _PRINTABLE_ASCII.fullmatch(payload):
        position = next(i for i, ch in enumerate(payload) if not " " <= ch <= "~")
        raise QrisError("bad_format", "a QRIS payload is printable ASCII", position=position)
    fields = _split_tlv(payload, offset=0, parent=None)
    for tag in _MANDATORY:
        if tag not in fields:
            raise QrisError("missing_tag", f"tag {tag} is missing", tag=tag)
    tags = list(fields)
    if tags[0] != "00":
        raise QrisError("bad_format", "the payload format indicator (tag 00) must come first", tag="00", position=0)
    if tags[-1] != "63":
        position = fields["63"].start - 4
        raise QrisError("bad_format", "the CRC (tag 63) must be the last field", tag="63", position=position)
    _check_crc(payload, fields["63"].value)
    return _interpret(fields)


class _Field(msgspec.Struct, frozen=True):
    start: int  # absolute position of the value in the payload, for error details
    value: str


def _split_tlv(data: str, *, offset: int, parent: str | None) -> dict[str, _Field]:
    """One TLV level → ordered {tag: field}; ``offset`` is where ``data`` starts in the payload."""
    fields: dict[str, _Field] = {}
    index = 0
    while index < len(data):
        position = offset + index
        if len(data) - index < 4:
            raise QrisError("bad_length", f"a truncated field header at {position}", tag=parent, position=position)
        tag, length_text = data[index : index + 2], data[index + 2 : index + 4]
        if not (_DIGITS.fullmatch(tag) and _DIGITS.fullmatch(length_text)):
            message = f"tag and length must be two digits each at {position}"
            raise QrisError("bad_format", message, tag=parent, position=position)
        name = f"{parent}.{tag}" if parent else tag
        length = int(length_text)
        if length == 0:
            raise QrisError("bad_format", f"tag {name} has length 00", tag=name, position=position)
        if index + 4 + length > len(data):
            remaining = len(data) - index - 4
            message = f"tag {name} declares {length} characters but {remaining} remain"
            raise QrisError("bad_length", message, tag=name, position=position)
        if tag in fields:
            raise QrisError("bad_format", f"tag {name} appears twice", tag=name, position=position)
        fields[tag] = _Field(position + 4, data[index + 4 : index + 4 + length])
        index += 4 + length
    return fields


def _check_crc(payload: str, crc: str) -> None:
    if not _CRC_VALUE.fullmatch(crc):
        raise QrisError("bad_format", "the CRC (tag 63) must be 4 uppercase hex digits", tag="63")
    expected = crc16_ccitt_false(payload[:-4])
    if crc != expected:
        raise QrisError("bad_crc", f"the CRC is {crc} but the payload's is {expected}", tag="63")


def _interpret(parsed: dict[str, _Field]) -> ParsedQris:
    fields = {tag: field.value for tag, field in parsed.items()}
    if fields["00"] != "01":
        raise QrisError("bad_format", "the payload format indicator (tag 00) must be 01", tag="00")
    initiation = {"11": "static", "12": "dynamic"}.get(fields["01"])
    if initiation is None:
        raise QrisError("bad_format", "the point of initiation (tag 01) must be 11 or 12", tag="01")
    accounts: dict[str, dict[str, str]] = {}
    other: dict[str, str] = {}
    for tag, field in parsed.items():
        number = int(tag)
        if number in _ACCOUNT_TEMPLATES:
            sub = _split_tlv(field.value, offset=field.start, parent=tag)
            accounts[tag] = {sub_tag: sub_field.value for sub_tag, sub_field in sub.items()}
        elif number in _ACCOUNT_PRIMITIVES or number >= 64:
            other[tag] = field.value
    if not accounts and not any(int(tag) in _ACCOUNT_PRIMITIVES for tag in fields):
        raise QrisError("missing_tag", "no merchant account information (tags 02-51)", tag="26-51")
    national = _national_account(accounts)
    mcc = fields["52"]
    if len(mcc) != 4 or not _DIGITS.fullmatch(mcc):
        raise QrisError("bad_format", "the merchant category code (tag 52) must be 4 digits", tag="52")
    if fields["53"] != "360":
        raise QrisError("bad_format", "the currency (tag 53) must be 360 (IDR)", tag="53")
    if fields["58"] != "ID":
        raise QrisError("bad_format", "the country (tag 58) must be ID", tag="58")
    tip_indicator = fields.get("55")
    if tip_indicator is not None and tip_indicator not in ("01", "02", "03"):
        raise QrisError("bad_format", "the tip indicator (tag 55) must be 01, 02 or 03", tag="55")
    for tag in ("59", "60"):
        if not fields[tag].strip():
            raise QrisError("bad_format", f"tag {tag} is blank", tag=tag)
    return ParsedQris(
        payload_format=fields["00"],
        point_of_initiation=initiation,  # type: ignore[arg-type]  # narrowed by the mapping above
        merchant_accounts=accounts,
        nmid=national.get("02") if national else None,
        merchant_criteria=national.get("03") if national else None,
        mcc=mcc,
        currency=fields["53"],
        amount=_amount(fields["54"]) if "54" in fields else None,
        tip_indicator=tip_indicator,
        tip_fixed=fields.get("56"),
        tip_percentage=fields.get("57"),
        country=fields["58"],
        merchant_name=fields["59"],
        merchant_city=fields["60"],
        postal_code=fields.get("61"),
        additional_data=_additional_data(parsed["62"]) if "62" in parsed else None,
        other_fields=other,
        crc=fields["63"],
    )


def _national_account(accounts: dict[str, dict[str, str]]) -> dict[str, str] | None:
    # Real QRIS puts the national NMID in tag 51; older or acquirer-specific codes may only
    # carry it in a 26-45 template whose GUID is the QRIS one.
    if "51" in accounts:
        return accounts["51"]
    return next((sub for sub in accounts.values() if sub.get("00", "").upper() == QRIS_GUID), None)


def _amount(text: str) -> int:
    # EMV allows a '.' decimal part; rupiah has no minor unit on this platform, so only an
    # all-zero fraction ("39000.00", as some acquirers emit) is accepted.
    match = _AMOUNT.fullmatch(text)
    if match is None or len(text) > 13:
        message = "the amount (tag 54) must be at most 13 digits with an optional '.' fraction"
        raise QrisError("bad_format", message, tag="54")
    whole, fraction = match.group(1), match.group(2) or ""
    if fraction.strip("0"):
        raise QrisError("bad_format", "the amount (tag 54) has a fractional rupiah part", tag="54")
    amount = int(whole)
    if amount <= 0:
        raise QrisError("bad_format", "the amount (tag 54) must be greater than zero", tag="54")
    return amount


def _additional_data(field: _Field) -> AdditionalData:
    sub = {tag: f.value for tag, f in _split_tlv(field.value, offset=field.start, parent="62").items()}
    return AdditionalData(
        bill_number=sub.pop("01", None),
        reference_label=sub.pop("05", None),
        terminal_label=sub.pop("07", None),
        other=sub,
    )
