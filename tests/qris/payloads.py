"""Test-side TLV assembly, independent of core.qris (which uses the standard library's crc_hqx):
the CRC here is the bit-by-bit definition."""

from __future__ import annotations


def tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def crc(body: str) -> str:
    # CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no xorout.
    value = 0xFFFF
    for byte in body.encode():
        value ^= byte << 8
        for _ in range(8):
            value = ((value << 1) ^ 0x1021) if value & 0x8000 else value << 1
        value &= 0xFFFF
    return f"{value:04X}"


def assemble(fields: list[tuple[str, str]]) -> str:
    """Fields in order, then ``6304`` and the CRC over everything before it."""
    body = "".join(tlv(tag, value) for tag, value in fields) + "6304"
    return body + crc(body)


def replace(fields: list[tuple[str, str]], tag: str, value: str | None) -> list[tuple[str, str]]:
    """A copy with ``tag``'s value replaced (or the field dropped when ``value`` is None)."""
    return [(t, value if t == tag else v) for t, v in fields if not (t == tag and value is None)]


NATIONAL_TEMPLATE = tlv("00", "ID.CO.QRIS.WWW") + tlv("02", "ID1020012345678") + tlv("03", "UMI")
ACQUIRER_TEMPLATE = (
    tlv("00", "ID.CO.BANKX.WWW") + tlv("01", "936000081234567890") + tlv("02", "BX0001") + tlv("03", "UMI")
)

# The layout the builder is documented to emit (docs/qris.md), for a dynamic QR.
DYNAMIC_FIELDS: list[tuple[str, str]] = [
    ("00", "01"),
    ("01", "12"),
    ("26", ACQUIRER_TEMPLATE),
    ("51", NATIONAL_TEMPLATE),
    ("52", "5812"),
    ("53", "360"),
    ("54", "25000"),
    ("58", "ID"),
    ("59", "WARUNG BU SRI"),
    ("60", "JAKARTA"),
    ("61", "10110"),
    ("62", tlv("01", "INV-0001") + tlv("05", "REF-77") + tlv("07", "A01")),
]
