"""SNAP amounts: ``{"value": "25000.00", "currency": "IDR"}`` ↔ integer rupiah."""

from __future__ import annotations

import re

from qris_soundbox.core.snap.codes import InvalidFieldFormat

# Digits, then optionally a point and exactly two digits; no sign, exponent or spaces.
_VALUE = re.compile(r"(0|[1-9][0-9]{0,14})(?:\.([0-9]{2}))?")


def rupiah(value: object, currency: object = "IDR") -> int:
    """``"25000.00"`` → 25000. Rupiah has no minor unit in QRIS, so a non-zero fraction
    (``"25000.50"``), another currency or any other spelling is ``InvalidFieldFormat``."""
    if currency != "IDR":
        raise InvalidFieldFormat("amount.currency must be IDR")
    match = _VALUE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidFieldFormat('amount.value must be a string like "25000.00"')
    if match[2] not in (None, "00"):
        raise InvalidFieldFormat("amount.value has a fraction; rupiah has no minor unit")
    return int(match[1])


def value(rupiah: int) -> str:
    """25000 → ``"25000.00"``."""
    return f"{rupiah}.00"
