"""Bank upload files of settlement batches, one module per bank layout.

A layout is a module defining ``FORMAT`` (a ``base.BankFormat``: name, media type,
file extension and ``render(transfers) -> bytes``), listed in ``LAYOUTS`` below,
with a test rendering known transfers. ``batch_file`` builds a batch's transfer
from the payout account the batch was created with — never the merchant's
current one — and refuses a batch without an account.
"""

from __future__ import annotations

from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.finance.bank_formats import bank_generic
from qris_soundbox.core.finance.bank_formats.base import BankFormat, Transfer
from qris_soundbox.core.finance.errors import FinanceInputInvalid, SettlementBatchNotFound
from qris_soundbox.core.finance.settlements import require_payout_account

LAYOUTS: tuple[BankFormat, ...] = (bank_generic.FORMAT,)
FORMATS: dict[str, BankFormat] = {layout.name: layout for layout in LAYOUTS}
STANDARD = "standard"


def report_format(fmt: str | None) -> str:
    """A settlement batch report's ``format`` query parameter: ``standard`` (when absent) or a bank layout."""
    value = fmt or STANDARD
    if value != STANDARD and value not in FORMATS:
        raise FinanceInputInvalid(
            f"format must be one of {', '.join((STANDARD, *FORMATS))}", details={"field": "format"}
        )
    return value


async def batch_transfer(conn: Connection, batch_id: str) -> Transfer:
    row = await conn.fetchrow(QUERIES["settlement_batch_bank_details"], batch_id)
    if row is None:
        raise SettlementBatchNotFound(f"settlement batch {batch_id} does not exist", details={"batch_id": batch_id})
    require_payout_account(row)
    return Transfer(
        batch_id=row["id"],
        merchant_id=row["merchant_id"],
        merchant_code=row["merchant_code"],
        merchant_email=row["merchant_email"],
        bank_code=row["bank_code"],
        account_number=row["account_number"],
        account_name=row["account_name"],
        amount=row["adjusted_payable_amount"],
        currency=row["currency"],
        value_date=row["value_date"],
        reference=row["payout_reference"] or row["id"],
        description=f"QRIS settlement {row['id']}",
    )


async def batch_file(conn: Connection, batch_id: str, fmt: str) -> bytes:
    """The batch's bank upload file in layout ``fmt``."""
    return FORMATS[fmt].render([await batch_transfer(conn, batch_id)])


__all__ = ["FORMATS", "BankFormat", "Transfer", "batch_file", "report_format"]
