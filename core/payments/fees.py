"""Splitting a paid amount into the platform fee and the merchant payable."""

from __future__ import annotations

import msgspec


class FeeSplit(msgspec.Struct, frozen=True, kw_only=True):
    gross: int
    fee: int
    payable: int


def split_gross(gross: int, fee_bps: int) -> FeeSplit:
    """Fee rounds half up to whole rupiah (IDR has no minor unit); the payable
    is the rest, so fee + payable = gross exactly, always."""
    if gross < 0 or not 0 <= fee_bps <= 10_000:
        raise ValueError("gross must be >= 0 and fee_bps within 0..10000")
    fee = (gross * fee_bps + 5_000) // 10_000
    return FeeSplit(gross=gross, fee=fee, payable=gross - fee)
