"""What a merchant's QRIS identity may hold, so every QR payload built from it is valid.

EMVCo MPM / QRIS limits (see docs/merchants.md):

- merchant name (tag 59): 1–25 characters;
- merchant city (tag 60): 1–15 characters;
- postal code (tag 61): 5 digits in Indonesia;
- MCC (tag 52): 4 digits (ISO 18245);
- NMID (QRIS National Merchant ID, tag 51 sub-tag 02): ``ID`` + 13 digits.

Names and cities are printable ASCII: EMVCo's "ans" character set, and the
only thing every soundbox screen and acquirer host renders the same way.
Leading/trailing spaces are trimmed; inner runs of spaces are kept.
"""

from __future__ import annotations

import re

from qris_soundbox.core.errors import ValidationFailed
from qris_soundbox.core.qris import QrisError, parse_qris

NAME_MAX = 25
CITY_MAX = 15
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]+$")
_MCC = re.compile(r"^\d{4}$")
_NMID = re.compile(r"^ID\d{13}$")
_POSTAL_CODE = re.compile(r"^\d{5}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
STATIC_QRIS_MAX = 512


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details={"field": field})


def qris_text(field: str, value: str, max_length: int) -> str:
    """A name or city as it will appear in the QR payload."""
    cleaned = value.strip()
    if not cleaned:
        raise invalid(field, "must not be empty")
    if len(cleaned) > max_length:
        raise invalid(field, f"at most {max_length} characters (QRIS limit)")
    if not _PRINTABLE_ASCII.match(cleaned):
        raise invalid(field, "printable ASCII characters only (QRIS character set)")
    return cleaned


def merchant_name(value: str) -> str:
    return qris_text("name", value, NAME_MAX)


def merchant_city(value: str) -> str:
    return qris_text("city", value, CITY_MAX)


def mcc(value: str) -> str:
    cleaned = value.strip()
    if not _MCC.match(cleaned):
        raise invalid("mcc", "a merchant category code is 4 digits, e.g. 5499")
    return cleaned


def nmid(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = value.strip().upper()
    if not _NMID.match(cleaned):
        raise invalid("nmid", "a QRIS NMID is 'ID' followed by 13 digits, e.g. ID1020021181745")
    return cleaned


def postal_code(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if not _POSTAL_CODE.match(cleaned):
        raise invalid("postal_code", "an Indonesian postal code is 5 digits")
    return cleaned


def email(value: str | None, field: str = "email") -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if len(cleaned) > 254 or not _EMAIL.match(cleaned):
        raise invalid(field, "not an email address")
    return cleaned


def fee_bps(value: int | None) -> int | None:
    if value is None:
        return None
    if not 0 <= value <= 10_000:
        raise invalid("fee_bps", "basis points between 0 and 10000")
    return value


def plain_text(field: str, value: str | None, max_length: int, *, required: bool = False) -> str | None:
    """Free text (outlet name, address, reason): trimmed, bounded, no control characters."""
    if value is None:
        if required:
            raise invalid(field, "is required")
        return None
    cleaned = value.strip()
    if not cleaned:
        if required:
            raise invalid(field, "must not be empty")
        return None
    if len(cleaned) > max_length:
        raise invalid(field, f"at most {max_length} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in cleaned):
        raise invalid(field, "control characters are not allowed")
    return cleaned


def static_qris(value: str | None) -> str | None:
    """A terminal's printed static QRIS string: parsed by ``core.qris`` (TLV, mandatory
    tags, CRC) and required to be static (tag 01 = 11) — a dynamic code is single-use."""
    if value is None:
        return None
    cleaned = value.strip()
    if not cleaned:
        raise invalid("static_qris", "must not be empty")
    if len(cleaned) > STATIC_QRIS_MAX:
        raise invalid("static_qris", f"at most {STATIC_QRIS_MAX} characters")
    if not _PRINTABLE_ASCII.match(cleaned):
        raise invalid("static_qris", "printable ASCII characters only")
    try:
        parsed = parse_qris(cleaned)
    except QrisError as exc:
        raise invalid("static_qris", f"not a valid QRIS payload: {exc.message}") from None
    if parsed.point_of_initiation != "static":
        raise invalid("static_qris", "a terminal's printed code must be a static QRIS (tag 01 = 11)")
    return cleaned
