"""CSV reports: the standard settlement report and the adjustment report (bank
upload files are in ``bank_formats``). Columns are documented in docs/finance.md.

Rows are produced by async generators reading through a server-side cursor in
one read-only REPEATABLE READ transaction (the rows and the summary come from
one snapshot), written by the ``csv`` module (RFC 4180, CRLF) as UTF-8, and
handed out in chunks so a large report never sits in memory. Text cells that a
spreadsheet would run as a formula (starting with ``= + - @``, tab or CR) are
prefixed with ``'``; numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from qris_soundbox.core.db import QUERIES, Database
from qris_soundbox.core.finance.schemas import AdjustmentFilters

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK_BYTES = 64 * 1024
CURSOR_PREFETCH = 500

STANDARD_COLUMNS: tuple[str, ...] = (
    "row_type",
    "batch_id",
    "merchant_id",
    "transaction_id",
    "ledger_entry_id",
    "reference",
    "provider_reference",
    "paid_at",
    "gross_amount",
    "fee_amount",
    "payable_amount",
    "adjustment_id",
    "adjustment_type",
    "adjustment_amount",
    "reason",
    "entry_count",
    "adjusted_payable_amount",
    "status",
    "payout_reference",
    "value_date",
)
ADJUSTMENT_COLUMNS = (
    "adjustment_id",
    "created_at",
    "batch_id",
    "batch_status",
    "batch_value_date",
    "merchant_id",
    "merchant_name",
    "adjustment_type",
    "amount",
    "reason",
    "actor_type",
    "actor_id",
    "carried_from_adjustment_id",
)


def safe_cell(value: Any) -> Any:
    """One cell: numbers as numbers, times as ISO-8601 UTC, text defused against formulas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class _Encoder:
    """csv.writer over a reusable buffer; ``rows`` → UTF-8 bytes."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def encode(self, rows: Iterable[Sequence[Any]]) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerows([safe_cell(v) for v in row] for row in rows)
        return self._buffer.getvalue().encode("utf-8")


def encode_rows(rows: Iterable[Sequence[Any]]) -> bytes:
    """A small CSV in one piece (a bank file), by the same rules as the streamed reports."""
    return _Encoder().encode(rows)


async def chunked_csv(rows: AsyncIterator[Sequence[Any]], header: Sequence[str]) -> AsyncIterator[bytes]:
    encoder = _Encoder()
    pending: list[Sequence[Any]] = [header]
    size = 0
    async for row in rows:
        pending.append(row)
        size += 1
        if size >= CURSOR_PREFETCH:
            yield encoder.encode(pending)
            pending, size = [], 0
    if pending:
        yield encoder.encode(pending)


def _by_columns(values: dict[str, Any], columns: Sequence[str]) -> list[Any]:
    return [values.get(column) for column in columns]


async def _standard_rows(conn: Any, batch_id: str) -> AsyncIterator[list[Any]]:
    batch = await conn.fetchrow(QUERIES["settlement_batch_by_id"], batch_id)
    if batch is None:
        return
    common = {"batch_id": batch["id"], "merchant_id": batch["merchant_id"]}
    async for entry in conn.cursor(QUERIES["settlement_batch_entries"], batch_id, prefetch=CURSOR_PREFETCH):
        yield _by_columns({**common, "row_type": "entry", **dict(entry)}, STANDARD_COLUMNS)
    async for adjustment in conn.cursor(QUERIES["settlement_batch_adjustments"], batch_id, prefetch=CURSOR_PREFETCH):
        yield _by_columns(
            {
                **common,
                "row_type": "adjustment",
                "adjustment_id": adjustment["id"],
                "adjustment_type": adjustment["adjustment_type"],
                "adjustment_amount": adjustment["amount"],
                "reason": adjustment["reason"],
            },
            STANDARD_COLUMNS,
        )
    yield _by_columns(
        {
            **common,
            "row_type": "summary",
            "gross_amount": batch["gross_amount"],
            "fee_amount": batch["fee_amount"],
            "payable_amount": batch["payable_amount"],
            "adjustment_amount": batch["adjustment_amount"],
            "entry_count": batch["entry_count"],
            "adjusted_payable_amount": batch["adjusted_payable_amount"],
            "status": batch["status"],
            "payout_reference": batch["payout_reference"],
            "value_date": batch["value_date"],
        },
        STANDARD_COLUMNS,
    )


async def batch_report(db: Database, batch_id: str) -> AsyncIterator[bytes]:
    """The batch's standard report, chunk by chunk."""
    async with db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        async for chunk in chunked_csv(_standard_rows(conn, batch_id), STANDARD_COLUMNS):
            yield chunk


async def adjustment_rows(conn: Any, filters: AdjustmentFilters, max_rows: int) -> AsyncIterator[list[Any]]:
    async for row in conn.cursor(
        QUERIES["settlement_adjustments_for_export"],
        filters.merchant_id,
        filters.adjustment_type,
        filters.from_,
        filters.to,
        max_rows,
        prefetch=CURSOR_PREFETCH,
    ):
        yield _by_columns({**dict(row), "adjustment_id": row["id"]}, ADJUSTMENT_COLUMNS)


async def adjustment_report(db: Database, filters: AdjustmentFilters, max_rows: int) -> AsyncIterator[bytes]:
    """The adjustment report (oldest first), at most ``max_rows`` rows, chunk by chunk."""
    async with db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        async for chunk in chunked_csv(adjustment_rows(conn, filters, max_rows), ADJUSTMENT_COLUMNS):
            yield chunk
