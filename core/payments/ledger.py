"""The ledger: three immutable rows per paid transaction (SPEC §6).

``gross_income`` = the amount paid; ``platform_fee`` at the transaction's fee
rate; ``merchant_payable`` = gross - fee. The unique (transaction, entry_type)
constraint makes a second write impossible, and a trigger refuses UPDATE/DELETE.
"""

from __future__ import annotations

import asyncpg

from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.payments.fees import split_gross

ENTRY_TYPES = ("gross_income", "platform_fee", "merchant_payable")


async def record_paid_transaction(conn: Connection, transaction: asyncpg.Record) -> None:
    split = split_gross(transaction["amount"], transaction["fee_bps"])
    for entry_type, amount in (
        ("gross_income", split.gross),
        ("platform_fee", split.fee),
        ("merchant_payable", split.payable),
    ):
        await conn.execute(
            QUERIES["insert_ledger_entry"],
            new_id("led"),
            transaction["id"],
            transaction["merchant_id"],
            entry_type,
            amount,
        )
