"""``bank_generic``: a CSV most banks' bulk-transfer tools import after a column mapping.

A header row, one ``D`` (detail) row per transfer, then one ``T`` (trailer) row
carrying the control totals a bank checks before it pays: ``record_count`` (the
number of ``D`` rows) and ``amount`` (their sum). Layout in docs/finance.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from qris_soundbox.core.finance.bank_formats.base import BankFormat, Transfer
from qris_soundbox.core.finance.csv_reports import encode_rows

COLUMNS: tuple[str, ...] = (
    "record_type",
    "batch_id",
    "beneficiary_name",
    "beneficiary_account_number",
    "beneficiary_bank_code",
    "amount",
    "currency",
    "value_date",
    "reference",
    "description",
    "merchant_id",
    "merchant_code",
    "beneficiary_email",
    "record_count",
)


def render(transfers: Sequence[Transfer]) -> bytes:
    details = [
        (
            "D",
            t.batch_id,
            t.account_name,
            t.account_number,
            t.bank_code,
            t.amount,
            t.currency,
            t.value_date,
            t.reference,
            t.description,
            t.merchant_id,
            t.merchant_code,
            t.merchant_email,
            None,
        )
        for t in transfers
    ]
    currency = transfers[0].currency if transfers else "IDR"
    trailer = ("T", None, None, None, None, sum(t.amount for t in transfers), currency, *[None] * 6, len(details))
    return encode_rows([COLUMNS, *details, trailer])


FORMAT = BankFormat(name="bank_generic", media_type="text/csv; charset=utf-8", extension="csv", render=render)
