"""Acquirer settlement reports: import the acquirer's daily CSV and set it against the ledger.

The upload is parsed as it streams in (``ReportParser``, a few chunks in memory
at a time) and its lines spooled to a temporary file; then one transaction
COPYs them into a temporary staging table and matches them in SQL by
``provider_reference`` against the transactions. Any malformed line aborts the import with a stable code and
its line number, and the transaction leaves nothing behind. The same file (by
SHA-256 of its content) imported twice gives the first import back.

Outcomes per line: matched (a paid transaction, same amount), ``amount_mismatch``,
``missing_in_ledger`` (no transaction, or one that is not paid); and per paid
transaction of the report's settlement dates that the report does not list,
``missing_in_report``. Matched lines are counted; exceptions are stored, listed,
exported and resolved with a note. See docs/finance.md.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection, Database, fetch_one
from qris_soundbox.core.finance.csv_reports import CURSOR_PREFETCH, chunked_csv
from qris_soundbox.core.finance.errors import (
    AcquirerReportNotFound,
    FinanceInputInvalid,
    ReportExceptionNotFound,
    ReportMalformed,
    ReportTooLarge,
    SettlementStateInvalid,
)
from qris_soundbox.core.finance.schemas import AcquirerReport, AcquirerReportException
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.paging import PageQuery, TimeWindow
from qris_soundbox.core.schemas import Page, from_row

BUSINESS_TZ = ZoneInfo("Asia/Jakarta")
REQUIRED_COLUMNS = ("provider_reference", "amount", "settlement_date")
OPTIONAL_COLUMNS = ("fee", "terminal_id", "merchant_nmid")
STAGE_COLUMNS = (
    "line_number",
    "provider_reference",
    "amount",
    "fee",
    "settlement_date",
    "terminal_id",
    "merchant_nmid",
)
EXCEPTION_KINDS = ("amount_mismatch", "missing_in_ledger", "missing_in_report")
MAX_LINE_CHARS = 4096
MAX_TEXT = 128
MAX_AMOUNT_DIGITS = 15
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EXPORT_COLUMNS = (
    "exception_id",
    "kind",
    "line_number",
    "provider_reference",
    "settlement_date",
    "report_amount",
    "report_fee",
    "ledger_amount",
    "terminal_id",
    "merchant_nmid",
    "transaction_id",
    "merchant_id",
    "ledger_status",
    "paid_at",
    "resolved_at",
    "resolved_by",
    "resolution_note",
)

Record = tuple[int, str, int, int | None, date, str | None, str | None]


def malformed(code: str, message: str, line: int | None, **details: Any) -> ReportMalformed:
    return ReportMalformed(message, code=code, details={"line": line, **details})


class ReportParser:
    """The report's bytes in, staging records out, chunk by chunk.

    UTF-8 (a BOM is allowed), one record per line (CRLF or LF); fields may be
    quoted but may not span lines. The header names the columns in any order;
    unknown columns are ignored. Blank lines are skipped. Amounts and fees are
    whole rupiah (ASCII digits), dates ``YYYY-MM-DD``.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._sha = hashlib.sha256()
        self._carry = ""
        self._line = 0
        self._started = False
        # provider_reference, amount, settlement_date, fee, terminal_id, merchant_nmid: their fields (None: absent)
        self._positions: tuple[int, int, int, int | None, int | None, int | None] | None = None
        self._width = 0
        self._dates: dict[str, date] = {}
        self.byte_size = 0
        self.line_count = 0
        self.amount = 0
        self.fee = 0
        self.settlement_dates: set[date] = set()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def feed(self, chunk: bytes) -> list[Record]:
        self._sha.update(chunk)
        self.byte_size += len(chunk)
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = self._line + 1 + chunk[: exc.start].count(b"\n")
            raise malformed("report_not_csv", "the report is not UTF-8 text", line) from None
        if not self._started:
            if not text:
                return []
            self._started = True
            text = text.removeprefix("\ufeff")
        buffer = self._carry + text
        end = buffer.rfind("\n")
        if end < 0:
            self._carry = buffer
            if len(buffer) > MAX_LINE_CHARS:
                raise malformed("report_bad_line", f"a line is longer than {MAX_LINE_CHARS} characters", self._line + 1)
            return []
        self._carry = buffer[end + 1 :]
        return self._lines(buffer[:end].split("\n"))

    def finish(self) -> list[Record]:
        try:
            tail = self._carry + self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise malformed("report_not_csv", "the report ends inside a UTF-8 character", self._line) from None
        records = self._lines([tail]) if tail.strip() else []
        if self._positions is None:
            raise malformed("report_empty", "the report is empty: a header and at least one line are needed", None)
        if self.line_count == 0:
            raise malformed("report_empty", "the report has a header but no lines", self._line)
        return records

    def _lines(self, lines: list[str]) -> list[Record]:
        records: list[Record] = []
        for raw in lines:
            self._line += 1
            line = raw[:-1] if raw.endswith("\r") else raw
            if len(line) > MAX_LINE_CHARS:
                raise malformed("report_bad_line", f"line is longer than {MAX_LINE_CHARS} characters", self._line)
            if "\x00" in line:
                raise malformed("report_not_csv", "the report holds a NUL byte: it is not a CSV text", self._line)
            if not line.strip():
                continue
            fields = self._fields(line)
            if self._positions is None:
                self._header(fields)
            else:
                records.append(self._record(fields))
        return records

    def _fields(self, line: str) -> list[str]:
        if '"' not in line:
            return line.split(",")
        try:
            rows = list(csv.reader([line], strict=True))
        except csv.Error:
            rows = []
        if len(rows) != 1:
            raise malformed("report_bad_line", "unbalanced quotes (a field may not span lines)", self._line)
        return rows[0]

    def _header(self, fields: list[str]) -> None:
        names = [f.strip().lower() for f in fields]
        duplicated = sorted({n for n in names if n and names.count(n) > 1})
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if duplicated or missing:
            problem = f"missing {', '.join(missing)}" if missing else f"repeated {', '.join(duplicated)}"
            raise malformed(
                "report_bad_header",
                f"the header must name {', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)}): "
                f"{problem}",
                self._line,
                missing=missing,
                duplicated=duplicated,
            )
        reference_at, amount_at, date_at = (names.index(n) for n in REQUIRED_COLUMNS)
        fee_at, terminal_at, nmid_at = (names.index(n) if n in names else None for n in OPTIONAL_COLUMNS)
        self._positions = (reference_at, amount_at, date_at, fee_at, terminal_at, nmid_at)
        self._width = len(names)

    def _record(self, fields: list[str]) -> Record:
        # The hot path: one call per line, the checks inline; the helpers only build the errors.
        if len(fields) != self._width:
            raise malformed("report_bad_line", f"line has {len(fields)} fields, the header {self._width}", self._line)
        assert self._positions is not None  # the header came first
        reference_at, amount_at, date_at, fee_at, terminal_at, nmid_at = self._positions
        reference = fields[reference_at].strip()
        amount = fields[amount_at].strip()
        raw_date = fields[date_at].strip()
        fee = fields[fee_at].strip() if fee_at is not None else ""
        terminal = fields[terminal_at].strip() if terminal_at is not None else ""
        nmid = fields[nmid_at].strip() if nmid_at is not None else ""
        if not 0 < len(reference) <= MAX_TEXT or not reference.isprintable():
            raise self._bad_text("provider_reference", "1 to")
        if not (amount.isdigit() and amount.isascii() and len(amount) <= MAX_AMOUNT_DIGITS):
            raise self._bad_amount("amount")
        if fee and not (fee.isdigit() and fee.isascii() and len(fee) <= MAX_AMOUNT_DIGITS):
            raise self._bad_amount("fee")
        if terminal and (len(terminal) > MAX_TEXT or not terminal.isprintable()):
            raise self._bad_text("terminal_id", "at most")
        if nmid and (len(nmid) > MAX_TEXT or not nmid.isprintable()):
            raise self._bad_text("merchant_nmid", "at most")
        settlement_date = self._dates.get(raw_date) or self._date(raw_date)
        amount_value = int(amount)
        fee_value = int(fee) if fee else None
        self.line_count += 1
        self.amount += amount_value
        self.fee += fee_value or 0
        return (self._line, reference, amount_value, fee_value, settlement_date, terminal or None, nmid or None)

    def _bad_amount(self, column: str) -> ReportMalformed:
        return malformed(
            "report_bad_amount",
            f"{column} must be a whole number of rupiah (digits only, at most {MAX_AMOUNT_DIGITS})",
            self._line,
            column=column,
        )

    def _bad_text(self, column: str, bound: str) -> ReportMalformed:
        return malformed(
            "report_bad_line", f"{column} must be {bound} {MAX_TEXT} printable characters", self._line, column=column
        )

    def _date(self, raw: str) -> date:
        known = self._dates.get(raw)
        if known is not None:
            return known
        try:
            if not _DATE.match(raw):
                raise ValueError(raw)
            value = date.fromisoformat(raw)
        except ValueError:
            raise malformed(
                "report_bad_date", "settlement_date must be a date YYYY-MM-DD", self._line, column="settlement_date"
            ) from None
        self._dates[raw] = value
        self.settlement_dates.add(value)
        return value


class _AlreadyImported(Exception):
    """Rolls the import's transaction back when its file was imported before."""

    def __init__(self, report_id: str) -> None:
        self.report_id = report_id


def business_day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """From the start of ``first`` to the end of ``last``, business days in Asia/Jakarta, in UTC."""
    start = datetime.combine(first, time(), BUSINESS_TZ)
    end = datetime.combine(last + timedelta(days=1), time(), BUSINESS_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


async def import_report(
    db: Database,
    chunks: AsyncIterator[bytes],
    actor: AuditActor,
    *,
    file_name: Callable[[], str | None],
    max_bytes: int,
    lag_days: int,
) -> AcquirerReport:
    """Import the report read from ``chunks`` (the file's bytes), or answer the earlier import of the same file.

    ``file_name`` gives the uploaded file's name once the chunks have been read (a multipart
    upload names it in the part's headers)."""
    parser = ReportParser()
    # The upload is parsed as it arrives and its lines spooled to a temporary file as CSV, so a
    # slow upload holds no database connection; the transaction starts once the file is complete.
    with tempfile.TemporaryFile() as spool:
        staged = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        writer = csv.writer(staged)
        async for chunk in chunks:
            if parser.byte_size + len(chunk) > max_bytes:
                raise ReportTooLarge(
                    f"the report is larger than {max_bytes} bytes (ACQUIRER_REPORT_MAX_BYTES)",
                    details={"max_bytes": max_bytes},
                )
            writer.writerows(parser.feed(chunk))
        writer.writerows(parser.finish())
        staged.flush()
        staged.detach()
        spool.seek(0)
        try:
            async with db.transaction() as conn:
                await conn.execute(QUERIES["lock_acquirer_report_content"], parser.sha256)
                existing = await conn.fetchval(QUERIES["acquirer_report_id_by_hash"], parser.sha256)
                if existing is not None:
                    raise _AlreadyImported(existing)
                await conn.execute(QUERIES["create_acquirer_report_stage"])
                await conn.copy_to_table("acquirer_report_stage", source=spool, columns=STAGE_COLUMNS, format="csv")
                await conn.execute(QUERIES["analyze_acquirer_report_stage"])
                await conn.execute(QUERIES["acquirer_report_stage_work_mem"])
                duplicate = await conn.fetchval(QUERIES["acquirer_report_stage_duplicate"])
                if duplicate is not None:
                    lines = await conn.fetchval(QUERIES["acquirer_report_stage_lines"], duplicate)
                    raise malformed(
                        "report_duplicate_reference",
                        f"provider_reference {duplicate!r} appears on lines {', '.join(map(str, lines))}",
                        lines[1],
                        lines=lines,
                    )
                report_id = await _match(conn, parser, actor, file_name=file_name(), lag_days=lag_days)
        except _AlreadyImported as again:
            report = await get_report(db, again.report_id)
            report.already_imported = True
            return report
    return await get_report(db, report_id)


async def _match(
    conn: Connection,
    parser: ReportParser,
    actor: AuditActor,
    *,
    file_name: str | None,
    lag_days: int,
) -> str:
    report_id = new_id("acr")
    dates = sorted(parser.settlement_dates)
    await conn.execute(
        QUERIES["insert_acquirer_report"],
        report_id,
        parser.sha256,
        file_name,
        parser.byte_size,
        parser.line_count,
        dates,
        parser.amount,
        parser.fee,
        lag_days,
        actor.actor_type,
        actor.actor_id,
    )
    await conn.execute(QUERIES["insert_acquirer_report_line_exceptions"], report_id)
    paid_from, paid_to = business_day_bounds(dates[0] - timedelta(days=lag_days), dates[-1] - timedelta(days=lag_days))
    await conn.execute(
        QUERIES["insert_acquirer_report_missing_exceptions"], report_id, dates, lag_days, paid_from, paid_to
    )
    totals = {r["kind"]: r for r in await conn.fetch(QUERIES["acquirer_report_exception_totals"], report_id)}

    def total(kind: str, field: str) -> int:
        row = totals.get(kind)
        return int(row[field]) if row is not None else 0

    unmatched = total("amount_mismatch", "count") + total("missing_in_ledger", "count")
    unmatched_amount = total("amount_mismatch", "report_amount") + total("missing_in_ledger", "report_amount")
    await conn.execute(
        QUERIES["set_acquirer_report_totals"],
        report_id,
        parser.line_count - unmatched,
        parser.amount - unmatched_amount,
        total("amount_mismatch", "count"),
        total("amount_mismatch", "report_amount"),
        total("amount_mismatch", "ledger_amount"),
        total("missing_in_ledger", "count"),
        total("missing_in_ledger", "report_amount"),
        total("missing_in_report", "count"),
        total("missing_in_report", "ledger_amount"),
    )
    await audit.record(
        conn,
        actor,
        "acquirer_report.import",
        entity_type="acquirer_report",
        entity_id=report_id,
        payload={
            "content_sha256": parser.sha256,
            "file_name": file_name,
            "line_count": parser.line_count,
            "exceptions": sum(total(kind, "count") for kind in EXCEPTION_KINDS),
        },
    )
    return report_id


async def get_report(db: Database, report_id: str) -> AcquirerReport:
    row = await db.fetchrow("acquirer_report_by_id", report_id)
    if row is None:
        raise AcquirerReportNotFound(f"acquirer report {report_id} does not exist", details={"report_id": report_id})
    return from_row(AcquirerReport, row)


async def list_reports(db: Database, page: PageQuery, window: TimeWindow) -> Page[AcquirerReport]:
    rows = await db.fetch("list_acquirer_reports", page.cursor, page.fetch_limit, window.from_, window.to)
    return page.page(rows, lambda row: from_row(AcquirerReport, row))


def check_kind(kind: str | None) -> None:
    if kind is not None and kind not in EXCEPTION_KINDS:
        raise FinanceInputInvalid(f"kind must be one of {', '.join(EXCEPTION_KINDS)}", details={"field": "kind"})


async def list_exceptions(
    db: Database,
    report_id: str,
    page: PageQuery,
    *,
    kind: str | None = None,
    resolved: bool | None = None,
    merchant_id: str | None = None,
) -> Page[AcquirerReportException]:
    check_kind(kind)
    await get_report(db, report_id)
    rows = await db.fetch(
        "list_acquirer_report_exceptions", report_id, page.cursor, page.fetch_limit, kind, resolved, merchant_id
    )
    return page.page(rows, lambda row: from_row(AcquirerReportException, row))


async def exceptions_csv(
    db: Database,
    report_id: str,
    *,
    kind: str | None = None,
    resolved: bool | None = None,
    merchant_id: str | None = None,
) -> AsyncIterator[bytes]:
    """The report's exceptions as CSV (report order), streamed from a server-side cursor."""
    async with db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):

        async def rows() -> AsyncIterator[list[Any]]:
            async for row in conn.cursor(
                QUERIES["acquirer_report_exceptions_for_export"],
                report_id,
                kind,
                resolved,
                merchant_id,
                prefetch=CURSOR_PREFETCH,
            ):
                values = {**dict(row), "exception_id": row["id"]}
                yield [values.get(column) for column in EXPORT_COLUMNS]

        async for chunk in chunked_csv(rows(), EXPORT_COLUMNS):
            yield chunk


async def resolve_exception(
    conn: Connection, report_id: str, exception_id: str, actor: AuditActor, *, note: str
) -> AcquirerReportException:
    """Close one exception with a note (once); audited in the same transaction."""
    note = note.strip()
    if not note:
        raise FinanceInputInvalid("note must not be blank", details={"field": "note"})
    current = await conn.fetchrow(QUERIES["acquirer_report_exception_for_update"], report_id, exception_id)
    if current is None:
        raise ReportExceptionNotFound(
            f"report {report_id} has no exception {exception_id}",
            details={"report_id": report_id, "exception_id": exception_id},
        )
    if current["resolved_at"] is not None:
        raise SettlementStateInvalid(
            f"exception {exception_id} was already resolved",
            details={"exception_id": exception_id, "resolved_at": current["resolved_at"].isoformat()},
        )
    row = await fetch_one(
        conn, "resolve_acquirer_report_exception", exception_id, note, actor.actor_type, actor.actor_id
    )
    await audit.record(
        conn,
        actor,
        "acquirer_report.exception.resolve",
        entity_type="acquirer_report_exception",
        entity_id=exception_id,
        merchant_id=row["merchant_id"],
        payload={"report_id": report_id, "kind": row["kind"], "note": note},
    )
    return from_row(AcquirerReportException, row)
